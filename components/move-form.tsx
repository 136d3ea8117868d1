"use client";
/**
 * Move a Stopped VM to another host (Incus' move, Proxmox's offline migration): its disk,
 * snapshots and key are copied there. Only hosts that are online are offered.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useSingleFlight } from "./use-single-flight.ts";
import { useVmChange } from "./use-vm-change.ts";

/** The VM page's Host card: none on a single host. */
export function MoveForm({ vmId, host }: { vmId: string; host: { id: string; name: string } | null }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const hosts = useQuery(trpc.host.list.queryOptions());
  const move = useMutation(trpc.vm.move.mutationOptions(callbacks));
  const once = useSingleFlight();
  const [target, setTarget] = useState("");
  const others = (hosts.data ?? []).filter((h) => h.id !== host?.id && h.online);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const chosen = target || others[0]?.id;
    if (chosen) once(() => move.mutateAsync({ id: vmId, hostId: chosen }));
  }

  if ((hosts.data ?? []).length < 2) return null;
  return (
    <section className="card" aria-labelledby="vm-move-title">
      <h2 id="vm-move-title">Host</h2>
      <p className="muted small">On host {host?.name ?? "?"}. A move copies its disk, snapshots and SSH key to the other host; it starts there next time.</p>
      {others.length === 0 ? (
        <p className="muted small">No other host is online to move it to.</p>
      ) : (
        <form className="form" onSubmit={submit}>
          <div className="port-row">
            <label>
              To host
              <select value={target || others[0]?.id} onChange={(e) => setTarget(e.target.value)} disabled={move.isPending}>
                {others.map((h) => (
                  <option key={h.id} value={h.id}>
                    {h.name}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit" disabled={move.isPending}>
              {move.isPending ? "Moving…" : "Move"}
            </button>
          </div>
        </form>
      )}
      <ErrorAlert message={error} onDismiss={clearError} />
    </section>
  );
}
