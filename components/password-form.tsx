"use client";
/** Your own password: the current one, then the new one twice; your other sessions end. */
import { NewPasswordInput, PASSWORD_RULE } from "./new-password-input.tsx";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";

export function PasswordForm() {
  const trpc = useTRPC();
  const [error, setError] = useState<string>();
  const [done, setDone] = useState(false);
  const change = useMutation(trpc.account.changePassword.mutationOptions());

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const newPassword = String(form.get("newPassword") ?? "");
    setError(undefined);
    setDone(false);
    if (newPassword !== String(form.get("repeat") ?? "")) return setError("The two new passwords differ; type the same one twice.");
    try {
      await change.mutateAsync({ currentPassword: String(form.get("currentPassword") ?? ""), newPassword });
      formElement.reset();
      setDone(true);
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={(e) => void submit(e)}>
      <h2>Change your password</h2>
      <p className="muted">Signs you out everywhere else; this browser stays signed in.</p>
      <div className="grid">
        <label className="field">
          <span>Current password</span>
          <input name="currentPassword" type="password" autoComplete="current-password" required />
        </label>
        <label className="field">
          <span>New password ({PASSWORD_RULE})</span>
          <NewPasswordInput name="newPassword" />
        </label>
        <label className="field">
          <span>New password again</span>
          <NewPasswordInput name="repeat" />
        </label>
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      {done ? (
        <p className="notice" role="status">
          Password changed; your other sessions ended.
        </p>
      ) : null}
      <div className="buttons">
        <button type="submit" className="primary" disabled={change.isPending}>
          Change password
        </button>
      </div>
    </form>
  );
}
