"use client";
/** The inventory: one row per VM with its state, size, SSH port, age and actions. */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatAge, formatMemory } from "./format.ts";
import { StateBadge } from "./state-badge.tsx";
import { useTRPC } from "./trpc.ts";
import { useNow } from "./use-now.ts";
import { VmActions } from "./vm-actions.tsx";

export function VmTable() {
  const trpc = useTRPC();
  const vms = useQuery(trpc.vm.list.queryOptions());
  const now = useNow();

  if (vms.isPending) return <p className="muted">Loading VMs…</p>;
  if (vms.isError) return <ErrorAlert message={errorText(vms.error)} />;
  if (vms.data.items.length === 0) return <p className="empty">No VMs yet. Create one below.</p>;

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
          <th className="num">SSH port</th>
          <th>Age</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        {vms.data.items.map((vm) => (
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
