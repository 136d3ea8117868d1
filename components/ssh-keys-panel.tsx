"use client";
/**
 * Your SSH public keys: VMs you create get them through cloud-init, pooled VMs you acquire
 * get them added; then `hangar ssh NAME` (or ssh with ProxyCommand) logs in with your key.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatTime } from "./format.ts";
import { useTRPC } from "./trpc.ts";

export function SshKeysPanel() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const keys = useQuery(trpc.account.sshKeys.queryOptions());
  const [error, setError] = useState<string>();
  const refresh = () => queryClient.invalidateQueries(trpc.account.sshKeys.pathFilter());
  const add = useMutation(trpc.account.addSshKey.mutationOptions({ onSettled: refresh }));
  const remove = useMutation(trpc.account.removeSshKey.mutationOptions({ onSettled: refresh, onError: (e) => setError(errorText(e)) }));

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const name = String(form.get("name") ?? "").trim();
    setError(undefined);
    try {
      await add.mutateAsync({ publicKey: String(form.get("publicKey") ?? ""), name: name || undefined });
      formElement.reset();
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <div className="stack">
      <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={(e) => void submit(e)}>
        <h2>Add an SSH key</h2>
        <p className="muted">
          VMs you create get your keys at their first boot, and pooled VMs you acquire get them at once; a running VM made before gets them with Add my SSH keys
          on its page. Then <code>hangar ssh NAME</code> logs you in with your own key.
        </p>
        <label className="field">
          <span>Public key (the line in ~/.ssh/id_ed25519.pub)</span>
          <textarea name="publicKey" required rows={3} placeholder="ssh-ed25519 AAAA… you@laptop" spellCheck={false} />
        </label>
        <label className="field">
          <span>Name (empty: the key&apos;s comment)</span>
          <input name="name" maxLength={100} placeholder="laptop" />
        </label>
        <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
        <div className="buttons">
          <button type="submit" className="primary" disabled={add.isPending}>
            Add key
          </button>
        </div>
      </form>
      <section className="card">
        <h2>Your SSH keys</h2>
        {keys.isPending ? <p className="muted">Loading…</p> : null}
        {keys.data?.length === 0 ? <p className="empty">No keys yet.</p> : null}
        {keys.data && keys.data.length > 0 ? (
          <table className="table compact">
            <thead>
              <tr>
                <th>Name</th>
                <th>Fingerprint</th>
                <th>Added</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {keys.data.map((key) => (
                <tr key={key.id} data-testid="ssh-key-row">
                  <td>{key.name}</td>
                  <td className="mono">{key.fingerprint}</td>
                  <td>{formatTime(key.createdAt)}</td>
                  <td>
                    <button type="button" className="danger small" onClick={() => remove.mutate({ id: key.id })}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
    </div>
  );
}
