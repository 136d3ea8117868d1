"use client";
/**
 * A Stopped or Suspended VM's Host card: where it is, and a move to another host (Incus'
 * move, Proxmox's offline migration) that copies its disk, snapshots, key and saved state
 * there. Only online hosts out of maintenance are offered; on a single host there is no card.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useSingleFlight } from "./use-single-flight.ts";
import { useVmChange } from "./use-vm-change.ts";

export function HostCard({ vmId, host, suspended }: { vmId: string; host: { id: string; name: string } | null; suspended: boolean }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const hosts = useQuery(trpc.host.list.queryOptions());
  const move = useMutation(trpc.vm.move.mutationOptions(callbacks));
  const once = useSingleFlight();
  const [target, setTarget] = useState("");
  const others = (hosts.data ?? []).filter((h) => h.id !== host?.id && h.online && h.maintenanceSince === null);
  // The host picked last may be the VM's own by now (it moved there), or gone offline.
  const chosen = others.some((h) => h.id === target) ? target : others[0]?.id;

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (chosen) once(() => move.mutateAsync({ id: vmId, hostId: chosen }));
  }

  if ((hosts.data ?? []).length < 2) return null;
  return (
    <section className="card" aria-labelledby="vm-move-title">
      <h2 id="vm-move-title">Host</h2>
      <p className="muted small">
        On host {host?.name ?? "?"}.{" "}
        {suspended
          ? "A move copies its disk, snapshots, saved state and SSH key to the other host (one that runs the same qemu); it resumes there next time."
          : "A move copies its disk, snapshots and SSH key to the other host; it starts there next time."}
      </p>
      {others.length === 0 ? (
        <p className="muted small">No other host is online and out of maintenance to move it to.</p>
      ) : (
        <form className="form" onSubmit={submit}>
          <div className="port-row">
            <label>
              To host
              <select value={chosen} onChange={(e) => setTarget(e.target.value)} disabled={move.isPending}>
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
