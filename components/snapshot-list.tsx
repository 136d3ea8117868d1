"use client";
/**
 * A VM's snapshots: take one, revert to one, delete one. Allowed while the VM is Stopped
 * (on the disk file) or Running (in qemu, with the VM's memory); the server decides.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatBytes, formatTime } from "./format.ts";
import { useTRPC } from "./trpc.ts";
import { useSingleFlight } from "./use-single-flight.ts";

export function SnapshotList({ vmId, state, canChange }: { vmId: string; state: string; canChange: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const snapshots = useQuery(trpc.snapshot.list.queryOptions({ id: vmId }));
  const [error, setError] = useState<string>();
  const settle = {
    onMutate: () => setError(undefined),
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () =>
      Promise.all([queryClient.invalidateQueries(trpc.snapshot.list.queryFilter({ id: vmId })), queryClient.invalidateQueries(trpc.vm.events.pathFilter())]),
  };
  const create = useMutation(trpc.snapshot.create.mutationOptions(settle));
  const revert = useMutation(trpc.snapshot.revert.mutationOptions(settle));
  const remove = useMutation(trpc.snapshot.delete.mutationOptions(settle));
  const once = useSingleFlight();
  const settled = state === "Stopped" || state === "Running";
  const busy = create.isPending || revert.isPending || remove.isPending;
  const disabled = !settled || busy;

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const name = String(new FormData(formElement).get("name") ?? "").trim();
    once(() => create.mutateAsync({ id: vmId, name }).then(() => formElement.reset()));
  }

  return (
    <div className="stack">
      <p className="muted">
        A snapshot taken while the VM is running includes its memory, and reverting to it brings the running VM back to that moment. One taken while the VM is
        stopped holds the disk only: reverting to it needs the VM stopped.
        {settled ? "" : ` Snapshots are available when the VM is Stopped or Running; it is ${state} now.`}
      </p>
      {snapshots.isPending ? (
        <p className="muted">Loading snapshots…</p>
      ) : snapshots.isError ? (
        <ErrorAlert message={errorText(snapshots.error)} />
      ) : snapshots.data.length === 0 ? (
        <p className="empty">No snapshots.</p>
      ) : (
        <table className="table compact" data-testid="snapshot-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Memory</th>
              <th className="num">Saved state size</th>
              <th>Taken</th>
              {canChange ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {snapshots.data.map((snapshot) => {
              const withMemory = snapshot.vmStateBytes > 0;
              const needsStop = !withMemory && state === "Running";
              return (
                <tr key={snapshot.name} data-testid="snapshot-row" data-snapshot-name={snapshot.name}>
                  <td>{snapshot.name}</td>
                  <td>{withMemory ? "yes" : "no"}</td>
                  <td className="num">{withMemory ? formatBytes(snapshot.vmStateBytes) : "—"}</td>
                  <td className="nowrap">{formatTime(snapshot.createdAt)}</td>
                  {canChange ? (
                    <td>
                      <div className="buttons">
                        <button
                          type="button"
                          className="small"
                          disabled={disabled || needsStop}
                          title={needsStop ? "Taken while stopped: stop the VM to revert to it" : undefined}
                          onClick={() =>
                            window.confirm(
                              `Revert VM to snapshot "${snapshot.name}"? The disk${withMemory ? " and the running state" : ""} go back to that moment; what changed since is lost unless you take a snapshot first.`,
                            ) && revert.mutate({ id: vmId, name: snapshot.name })
                          }
                        >
                          Revert
                        </button>
                        <button
                          type="button"
                          className="danger small"
                          disabled={disabled}
                          onClick={() => window.confirm(`Delete snapshot "${snapshot.name}"?`) && remove.mutate({ id: vmId, name: snapshot.name })}
                        >
                          Delete
                        </button>
                      </div>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {canChange ? (
        <form onInvalidCapture={() => setError(undefined)} className="port-row" onSubmit={submit} aria-label="New snapshot">
          <label className="field grow">
            <span>Snapshot name</span>
            <input name="name" required maxLength={63} pattern="[A-Za-z0-9_][A-Za-z0-9._\-]*" title="Letters, digits, dots, dashes and underscores" />
          </label>
          <button type="submit" disabled={disabled}>
            Take snapshot
          </button>
        </form>
      ) : null}
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </div>
  );
}
