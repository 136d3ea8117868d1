"use client";
/**
 * A host's maintenance, for admins when there are several hosts (as Proxmox's maintenance
 * mode and Incus' evacuate): Evacuate keeps new VMs off the host and moves its VMs to the
 * others; Restore ends that and brings them back. Each answers with where every VM went, or
 * why it stayed. An offline host offers Remove instead (Incus' `cluster remove`).
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC, type RouterOutputs } from "./trpc.ts";
import { useSingleFlight } from "./use-single-flight.ts";

type Relocation = RouterOutputs["host"]["evacuate"];

function RelocationResult({ result, verb }: { result: Relocation; verb: string }) {
  return (
    <div className="notice relocation" role="status" data-testid="relocation">
      <p>
        {verb} host {result.host}: {result.moved.length} VM{result.moved.length === 1 ? "" : "s"} moved, {result.stayed.length} stayed.
      </p>
      {result.moved.length + result.stayed.length > 0 ? (
        <ul>
          {result.moved.map((vm) => (
            <li key={vm.id}>
              {vm.name} → {vm.to}
              {vm.restarted ? " (running again)" : ""}
              {vm.problem ? `: ${vm.problem}` : ""}
            </li>
          ))}
          {result.stayed.map((vm) => (
            <li key={vm.id}>
              {vm.name} stayed: {vm.reason}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function HostMaintenance({ host }: { host: { id: string; name: string; online: boolean; maintenanceSince: Date | null } }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const [result, setResult] = useState<{ verb: string; relocation: Relocation }>();
  const settle = {
    onMutate: () => {
      setError(undefined);
      setResult(undefined);
    },
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () => Promise.all([queryClient.invalidateQueries(trpc.metrics.hosts.queryFilter()), queryClient.invalidateQueries(trpc.host.pathFilter())]),
  };
  const remove = useMutation(trpc.host.remove.mutationOptions(settle));
  const evacuate = useMutation(trpc.host.evacuate.mutationOptions({ ...settle, onSuccess: (relocation) => setResult({ verb: "Evacuated", relocation }) }));
  const restore = useMutation(trpc.host.restore.mutationOptions({ ...settle, onSuccess: (relocation) => setResult({ verb: "Restored", relocation }) }));
  const once = useSingleFlight();
  const busy = evacuate.isPending || restore.isPending || remove.isPending;

  function onEvacuate() {
    const question =
      `Evacuate host ${host.name}? No new VM goes there until it is restored. Its Stopped VMs move to other hosts; ` +
      "its Running VMs are stopped, moved and started there, and its Suspended VMs move with their saved state where the other host runs the same qemu. VMs in the middle of an action and VMs waiting in a pool stay.";
    if (window.confirm(question)) once(() => evacuate.mutateAsync({ id: host.id }));
  }

  function onRestore() {
    if (window.confirm(`End the maintenance of host ${host.name}? It takes VMs again, and the VMs its evacuation moved away come back.`)) {
      once(() => restore.mutateAsync({ id: host.id }));
    }
  }

  function onRemove() {
    if (
      window.confirm(`Remove host ${host.name} from this Hangar? Do this for a machine that has gone for good; a Hangar started there again registers it anew.`)
    ) {
      once(() => remove.mutateAsync({ id: host.id }));
    }
  }

  // An offline host cannot be evacuated (it serves its disks); one gone for good can be removed.
  if (!host.online) {
    return (
      <div className="stack tight host-maintenance">
        <div className="buttons">
          <button type="button" disabled={busy} onClick={onRemove}>
            {remove.isPending ? "Removing…" : "Remove"}
          </button>
        </div>
        <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      </div>
    );
  }

  return (
    <div className="stack tight host-maintenance">
      <div className="buttons">
        {host.maintenanceSince ? (
          <button type="button" disabled={busy} onClick={onRestore}>
            {restore.isPending ? "Restoring…" : "Restore"}
          </button>
        ) : null}
        <button type="button" disabled={busy} onClick={onEvacuate}>
          {evacuate.isPending ? "Evacuating…" : host.maintenanceSince ? "Evacuate again" : "Evacuate"}
        </button>
      </div>
      {busy ? <p className="muted">Moving VMs; each takes as long as copying its disk, and a running one as long as its boot.</p> : null}
      {result ? <RelocationResult result={result.relocation} verb={result.verb} /> : null}
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </div>
  );
}
