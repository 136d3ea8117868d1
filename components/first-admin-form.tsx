"use client";
/** First run: while Hangar has no user, create the first admin and sign in as them. */
import { NewPasswordInput, PASSWORD_RULE } from "./new-password-input.tsx";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { startOverAt } from "./session.tsx";
import { signIn } from "./sign-in-form.tsx";
import { useTRPC } from "./trpc.ts";

export function FirstAdminForm() {
  const trpc = useTRPC();
  const [error, setError] = useState<string>();
  const create = useMutation(trpc.account.createFirstAdmin.mutationOptions());

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const input = { email: String(form.get("email") ?? ""), name: String(form.get("name") ?? ""), password: String(form.get("password") ?? "") };
    try {
      await create.mutateAsync({ ...input, setupCode: String(form.get("setupCode") ?? "") });
    } catch (e) {
      return setError(errorText(e));
    }
    const problem = await signIn(input.email, input.password);
    if (problem) return setError(problem);
    startOverAt("/");
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form narrow" onSubmit={(e) => void submit(e)}>
      <h1>Create the first admin</h1>
      <p className="muted">Hangar has no users yet. The first one is an admin, who then adds everyone else.</p>
      <label className="field">
        <span>Setup code</span>
        <input name="setupCode" autoComplete="off" spellCheck={false} required />
        <small className="muted">
          Hangar printed it in its log at start-up; it is also in the file <code>setup-code</code> in its state directory.
        </small>
      </label>
      <label className="field">
        <span>Name</span>
        <input name="name" required />
      </label>
      <label className="field">
        <span>Email</span>
        <input name="email" type="email" autoComplete="username" required />
      </label>
      <label className="field">
        <span>Password</span>
        <NewPasswordInput name="password" aria-describedby="first-admin-password-rule" />
        <span id="first-admin-password-rule" className="muted small">
          {PASSWORD_RULE}.
        </span>
      </label>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <button type="submit" className="primary" disabled={create.isPending}>
        Create admin
      </button>
    </form>
  );
}
