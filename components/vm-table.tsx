"use client";
/** The inventory: one row per VM with its state, size, CPU and memory use, SSH port, age and actions. */
import Link from "next/link";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatAge, formatMemory } from "./format.ts";
import { StateBadge } from "./state-badge.tsx";
import { useTRPC } from "./trpc.ts";
import { useNow } from "./use-now.ts";
import { VmActions } from "./vm-actions.tsx";

/** Patches each sample's CPU and memory into the cached list rows (metrics.onUsage). */
function useLiveUsage() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  useSubscription(
    trpc.metrics.onUsage.subscriptionOptions(undefined, {
      onData: (sample) => {
        const byId = new Map(sample.map((entry) => [entry.id, entry.usage]));
        // Rows whose figures did not change keep their identity (and are not rendered again).
        queryClient.setQueryData(trpc.vm.list.queryKey(), (rows) =>
          rows?.map((row) => {
            const usage = byId.get(row.id) ?? null;
            const same = usage?.cpuPercent === row.usage?.cpuPercent && usage?.rssMiB === row.usage?.rssMiB;
            return same ? row : { ...row, usage };
          }),
        );
      },
    }),
  );
}

export function VmTable() {
  const trpc = useTRPC();
  const vms = useQuery(trpc.vm.list.queryOptions());
  const now = useNow();
  useLiveUsage();

  if (vms.isPending) return <p className="muted">Loading VMs…</p>;
  if (vms.isError) return <ErrorAlert message={errorText(vms.error)} />;
  if (vms.data.length === 0) return <p className="empty">No VMs yet. Create one below.</p>;

  return (
    <table className="table">
      <thead>
        <tr>
          <th>Name</th>
          <th>State</th>
          <th>Image</th>
          <th>Owner</th>
          <th>Host</th>
          <th className="num">CPUs</th>
          <th className="num">Memory</th>
          <th className="num" title="CPU use of the VM's qemu, % of one core">CPU use</th>
          <th className="num" title="Resident memory of the VM's qemu">Memory use</th>
          <th className="num">SSH port</th>
          <th>Age</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        {vms.data.map((vm) => (
          <tr key={vm.id} data-testid="vm-row" data-vm-name={vm.name} data-vm-id={vm.id}>
            <td>
              <Link href={`/vms/${vm.id}`} className="vm-name">
                {vm.name}
              </Link>
            </td>
            <td>
              <StateBadge state={vm.state} />
              {vm.error ? (
                <span className="error-mark" title={vm.error}>
                  {" "}
                  !
                </span>
              ) : null}
            </td>
            <td>{vm.image.name}</td>
            <td>{vm.owner?.email ?? "—"}</td>
            <td>{vm.host?.name ?? "—"}</td>
            <td className="num">{vm.cpus}</td>
            <td className="num">{formatMemory(vm.memoryMiB)}</td>
            <td className="num" data-testid="vm-cpu-use">
              {vm.usage?.cpuPercent != null ? `${vm.usage.cpuPercent.toFixed(0)} %` : "—"}
            </td>
            <td className="num" data-testid="vm-memory-use">
              {vm.usage?.rssMiB != null ? formatMemory(Math.round(vm.usage.rssMiB)) : "—"}
            </td>
            <td className="num" data-testid="vm-ssh-port">
              {vm.sshPort ?? "—"}
            </td>
            <td title={vm.createdAt.toLocaleString()}>{formatAge(vm.createdAt, now)}</td>
            <td>
              <VmActions vm={vm} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
