"use client";
/** Your API tokens: create one (shown once; read-only if asked), see when each was last used, revoke. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { CopyCommand } from "./copy-command.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatTime } from "./format.ts";
import { useTRPC } from "./trpc.ts";

export function TokensPanel() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const tokens = useQuery(trpc.token.list.queryOptions());
  const [error, setError] = useState<string>();
  const [created, setCreated] = useState<{ name: string; token: string }>();
  const refresh = () => queryClient.invalidateQueries(trpc.token.pathFilter());
  const create = useMutation(trpc.token.create.mutationOptions({ onSettled: refresh }));
  const revoke = useMutation(trpc.token.revoke.mutationOptions({ onSettled: refresh, onError: (e) => setError(errorText(e)) }));

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const days = Number(form.get("expiresInDays") || 0);
    setError(undefined);
    try {
      const result = await create.mutateAsync({
        name: String(form.get("name") ?? ""),
        expiresInDays: days > 0 ? days : undefined,
        readOnly: form.get("readOnly") === "on",
      });
      setCreated({ name: result.name, token: result.token });
      formElement.reset();
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <div className="stack">
      <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={(e) => void submit(e)}>
        <h2>New token</h2>
        <div className="grid">
          <label className="field">
            <span>Token name</span>
            <input name="name" required placeholder="ci" />
          </label>
          <label className="field">
            <span>Expires in days (empty: never)</span>
            <input name="expiresInDays" type="number" min={1} max={3650} />
          </label>
        </div>
        <label className="check">
          <input type="checkbox" name="readOnly" />
          Read only: lists, details, events and metrics; every change is refused
        </label>
        <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
        <div className="buttons">
          <button type="submit" className="primary" disabled={create.isPending}>
            Create token
          </button>
        </div>
      </form>
      {created ? (
        <section className="card" data-testid="new-token">
          <h2>Token {created.name}</h2>
          <p className="muted">Copy it now: it is not shown again. Send it as Authorization: Bearer.</p>
          <CopyCommand label="Token" command={created.token} />
        </section>
      ) : null}
      <section className="card">
        <h2>Your tokens</h2>
        {tokens.isPending ? <p className="muted">Loading…</p> : null}
        {tokens.data?.length === 0 ? <p className="empty">No tokens yet.</p> : null}
        {tokens.data && tokens.data.length > 0 ? (
          <table className="table compact">
            <thead>
              <tr>
                <th>Name</th>
                <th>Starts with</th>
                <th>Access</th>
                <th>Created</th>
                <th>Expires</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((token) => (
                <tr key={token.id} data-testid="token-row">
                  <td>{token.name}</td>
                  <td className="mono">{token.prefix}…</td>
                  <td>{token.readOnly ? "read only" : "as you"}</td>
                  <td>{formatTime(token.createdAt)}</td>
                  <td>{token.expiresAt ? formatTime(token.expiresAt) : "never"}</td>
                  <td>{token.lastUsedAt ? formatTime(token.lastUsedAt) : "never"}</td>
                  <td>
                    {token.revokedAt ? (
                      <span className="muted">revoked</span>
                    ) : (
                      <button
                        type="button"
                        className="danger small"
                        onClick={() => {
                          // Cannot be undone, and whatever uses the token stops working at once.
                          if (window.confirm(`Revoke token "${token.name}"? Whatever uses it is refused from now on; this cannot be undone.`)) {
                            revoke.mutate({ id: token.id });
                          }
                        }}
                      >
                        Revoke
                      </button>
                    )}
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
