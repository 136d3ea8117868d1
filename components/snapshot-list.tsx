"use client";
/** A VM's disk snapshots: take one, revert to one, delete one. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatBytes, formatTime } from "./format.ts";
import { useTRPC } from "./trpc.ts";

export function SnapshotList({ vmId, state, canChange }: { vmId: string; state: string; canChange: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const snapshots = useQuery(trpc.snapshot.list.queryOptions({ id: vmId }));
  const [error, setError] = useState<string>();
  const settle = {
    onMutate: () => setError(undefined),
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () => queryClient.invalidateQueries(trpc.snapshot.list.queryFilter({ id: vmId })),
  };
  const create = useMutation(trpc.snapshot.create.mutationOptions(settle));
  const revert = useMutation(trpc.snapshot.revert.mutationOptions(settle));
  const remove = useMutation(trpc.snapshot.delete.mutationOptions(settle));
  const settled = state === "Stopped" || state === "Running";
  const busy = create.isPending || revert.isPending || remove.isPending;

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    create.mutate({ id: vmId, name: String(new FormData(formElement).get("name") ?? "") }, { onSuccess: () => formElement.reset() });
  }

  return (
    <div className="stack">
      <p className="muted">
        A snapshot taken while the VM runs includes its memory; one taken while it is stopped holds the disk only and can be
        reverted to only while the VM is stopped.
      </p>
      {snapshots.data && snapshots.data.length > 0 ? (
        <table className="table compact" data-testid="snapshot-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Memory</th>
              <th>Taken</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {snapshots.data.map((snapshot) => (
              <tr key={snapshot.name} data-testid="snapshot-row">
                <td>{snapshot.name}</td>
                <td>{snapshot.vmStateBytes > 0 ? `yes (${formatBytes(snapshot.vmStateBytes)})` : "no"}</td>
                <td>{formatTime(snapshot.createdAt)}</td>
                <td className="buttons">
                  {canChange ? (
                    <>
                      <button type="button" className="small" disabled={!settled || busy} onClick={() => revert.mutate({ id: vmId, name: snapshot.name })}>
                        Revert
                      </button>
                      <button
                        type="button"
                        className="danger small"
                        disabled={!settled || busy}
                        onClick={() => window.confirm(`Delete snapshot "${snapshot.name}"?`) && remove.mutate({ id: vmId, name: snapshot.name })}
                      >
                        Delete
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="empty">No snapshots.</p>
      )}
      {canChange ? (
        <form className="port-row" onSubmit={submit}>
          <label className="field">
            <span>Snapshot name</span>
            <input name="name" required pattern="[A-Za-z0-9_][A-Za-z0-9._\-]{0,62}" />
          </label>
          <button type="submit" disabled={!settled || busy}>
            Take snapshot
          </button>
        </form>
      ) : null}
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </div>
  );
}
