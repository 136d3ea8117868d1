"use client";
/** Email + password sign-in through better-auth; on success, back to the page that asked for it, or the dashboard. */
import { useState, type FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { startOverAt } from "./session.tsx";
import { afterSignIn } from "./sign-in-path.ts";

export async function signIn(email: string, password: string): Promise<string | undefined> {
  const response = await fetch("/api/auth/sign-in/email", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (response.ok) return undefined;
  if (response.status === 429) {
    // better-auth's own sentence says neither what was limited nor for how long.
    const seconds = Number(response.headers.get("x-retry-after"));
    const wait = Number.isFinite(seconds) && seconds > 0 ? `in ${seconds} s` : "in a minute";
    return `Too many sign-in attempts from this address; try again ${wait}.`;
  }
  const body = (await response.json().catch(() => ({}))) as { message?: string };
  return body.message ?? `Sign-in failed (${response.status}).`;
}

export function SignInForm() {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    const problem = await signIn(String(form.get("email") ?? ""), String(form.get("password") ?? ""));
    setBusy(false);
    if (problem) return setError(problem);
    // Back to the page that sent the person here (a link they followed, a session that ended).
    startOverAt(afterSignIn(new URLSearchParams(window.location.search).get("next"), window.location.origin));
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form narrow" onSubmit={(e) => void submit(e)}>
      <h1>Sign in</h1>
      <label className="field">
        <span>Email</span>
        <input name="email" type="email" autoComplete="username" required />
      </label>
      <label className="field">
        <span>Password</span>
        <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <button type="submit" className="primary" disabled={busy}>
        Sign in
      </button>
    </form>
  );
}
