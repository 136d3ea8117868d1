"use client";
/** Admins: add users with a role, change roles and quotas, disable or remove users. */
import { NewPasswordInput, PASSWORD_RULE } from "./new-password-input.tsx";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ROLES, isRole } from "../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC, type RouterOutputs } from "./trpc.ts";

type User = RouterOutputs["user"]["list"][number];

/** The role picked in the form's select of ROLES; anything else is the least one. */
function formRole(value: FormDataEntryValue | null) {
  const text = String(value ?? "");
  return isRole(text) ? text : "viewer";
}

function quota(value: FormDataEntryValue | null): number | null {
  const text = String(value ?? "").trim();
  return text === "" ? null : Number(text);
}

export function UsersPanel() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const users = useQuery(trpc.user.list.queryOptions());
  const [error, setError] = useState<string>();
  const settle = { onSettled: () => queryClient.invalidateQueries(trpc.user.pathFilter()), onError: (e: unknown) => setError(errorText(e)) };
  const add = useMutation(trpc.user.add.mutationOptions(settle));
  const update = useMutation(trpc.user.update.mutationOptions(settle));
  const remove = useMutation(trpc.user.remove.mutationOptions(settle));
  const newPassword = useMutation(trpc.user.setPassword.mutationOptions({ onError: (e: unknown) => setError(errorText(e)) }));
  const [notice, setNotice] = useState<string>();
  // The server keeps one enabled admin; their row offers nothing it would refuse, and says why.
  const enabledAdmins = users.data?.filter((user) => user.role === "admin" && !user.disabled) ?? [];
  const lastAdminId = enabledAdmins.length === 1 ? enabledAdmins[0]?.id : undefined;

  function setPassword(user: User, event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const password = String(new FormData(formElement).get("password") ?? "");
    setError(undefined);
    setNotice(undefined);
    newPassword.mutate(
      { id: user.id, password },
      {
        onSuccess: () => {
          formElement.reset();
          formElement.closest("details")?.removeAttribute("open");
          setNotice(`${user.email} has a new password; their sessions ended. Tell them the password another way than email.`);
        },
      },
    );
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    setError(undefined);
    setNotice(undefined);
    add.mutate(
      {
        email: String(form.get("email") ?? ""),
        name: String(form.get("name") ?? ""),
        password: String(form.get("password") ?? ""),
        role: formRole(form.get("role")),
      },
      {
        // The new row can be below the fold: say that it worked.
        onSuccess: (user) => {
          formElement.reset();
          setNotice(`Added ${user.email} as ${user.role === "viewer" ? "a viewer" : `an ${user.role}`}.`);
        },
      },
    );
  }

  function saveQuotas(user: User, event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setError(undefined);
    setNotice(undefined);
    // The fields look the same before and after a save: say that it worked.
    update.mutate(
      { id: user.id, maxVms: quota(form.get("maxVms")), maxCpus: quota(form.get("maxCpus")), maxMemoryMiB: quota(form.get("maxMemoryMiB")) },
      { onSuccess: () => setNotice(`Saved the quotas of ${user.email}.`) },
    );
  }

  return (
    <div className="stack">
      <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={submit}>
        <h2>Add a user</h2>
        <div className="grid">
          <label className="field">
            <span>Name</span>
            <input name="name" required />
          </label>
          <label className="field">
            <span>Email</span>
            <input name="email" type="email" required />
          </label>
          <label className="field">
            <span>Password</span>
            <NewPasswordInput name="password" placeholder={PASSWORD_RULE} />
          </label>
          <label className="field">
            <span>Role</span>
            <select name="role" defaultValue="operator">
              {ROLES.map((role) => (
                <option key={role}>{role}</option>
              ))}
            </select>
          </label>
        </div>
        <div className="buttons">
          <button type="submit" className="primary" disabled={add.isPending}>
            Add user
          </button>
        </div>
      </form>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <section className="card">
        <h2>Users</h2>
        <table className="table compact">
          <thead>
            <tr>
              <th>Email</th>
              <th>Role</th>
              <th>Quotas (VMs, vCPUs, MiB; empty: no limit)</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.data?.map((user) => (
              <tr key={user.id} data-testid="user-row" data-email={user.email}>
                <td>
                  {user.email}
                  <div className="muted">{user.name}</div>
                  {user.id === lastAdminId ? (
                    <div className="muted small">The only enabled admin: make someone else admin before demoting, disabling or removing them.</div>
                  ) : null}
                </td>
                <td>
                  <select
                    aria-label={`Role of ${user.email}`}
                    disabled={user.id === lastAdminId}
                    value={user.role}
                    onChange={(e) => update.mutate({ id: user.id, role: e.target.value as (typeof ROLES)[number] })}
                  >
                    {ROLES.map((role) => (
                      <option key={role}>{role}</option>
                    ))}
                  </select>
                </td>
                <td>
                  <form onInvalidCapture={() => setError(undefined)} className="buttons" onSubmit={(e) => saveQuotas(user, e)}>
                    <input name="maxVms" type="number" min={0} defaultValue={user.maxVms ?? ""} aria-label="Max VMs" placeholder="VMs" className="tiny" />
                    <input name="maxCpus" type="number" min={0} defaultValue={user.maxCpus ?? ""} aria-label="Max vCPUs" placeholder="vCPUs" className="tiny" />
                    <input
                      name="maxMemoryMiB"
                      type="number"
                      min={0}
                      defaultValue={user.maxMemoryMiB ?? ""}
                      aria-label="Max memory MiB"
                      placeholder="MiB"
                      className="tiny"
                    />
                    <button type="submit" className="small">
                      Save
                    </button>
                  </form>
                </td>
                <td>{user.disabled ? <span className="bad">disabled</span> : <span className="ok">active</span>}</td>
                <td className="buttons">
                  <button
                    type="button"
                    className="small"
                    disabled={user.id === lastAdminId}
                    onClick={() => update.mutate({ id: user.id, disabled: !user.disabled })}
                  >
                    {user.disabled ? "Enable" : "Disable"}
                  </button>
                  <details>
                    <summary className="small">Set password</summary>
                    <form onInvalidCapture={() => setError(undefined)} className="buttons" onSubmit={(e) => setPassword(user, e)}>
                      <NewPasswordInput name="password" aria-label={`New password for ${user.email}`} placeholder={PASSWORD_RULE} />
                      <button type="submit" className="small" disabled={newPassword.isPending}>
                        Set
                      </button>
                    </form>
                  </details>
                  <button
                    type="button"
                    className="danger small"
                    disabled={user.id === lastAdminId}
                    onClick={() =>
                      window.confirm(
                        `Remove ${user.email}? Their VMs stay, without an owner, until an admin gives them to someone (Owner, on each VM's page).`,
                      ) && remove.mutate({ id: user.id })
                    }
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
