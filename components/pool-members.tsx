"use client";
/** A pool's member VMs: name (to its page), state, who acquired it and when, Release. */
import Link from "next/link";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatTime } from "./format.ts";
import { canControl } from "../lib/vocabulary.ts";
import { useMe } from "./session.tsx";
import { StateBadge } from "./state-badge.tsx";
import { useTRPC, type PoolRow } from "./trpc.ts";

export function PoolMembers({ vms }: { vms: PoolRow["vms"] }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const [error, setError] = useState<string>();
  const release = useMutation(
    trpc.pool.release.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSettled: () => Promise.all([queryClient.invalidateQueries(trpc.pool.pathFilter()), queryClient.invalidateQueries(trpc.vm.pathFilter())]),
    }),
  );

  if (vms.length === 0) return <p className="empty">No members yet.</p>;
  return (
    <>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <table className="table compact">
        <thead>
          <tr>
            <th>Member</th>
            <th>State</th>
            <th>Acquired by</th>
            <th>Acquired at</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {vms.map((vm) => {
            const releasing = release.isPending && release.variables.vmId === vm.id;
            return (
              <tr key={vm.id} data-testid="pool-member" data-vm-id={vm.id} data-vm-name={vm.name}>
                <td>
                  <Link href={`/vms/${vm.id}`} className="vm-name">
                    {vm.name}
                  </Link>
                </td>
                <td>
                  <StateBadge state={vm.state} />
                </td>
                <td>{vm.acquiredBy ?? "—"}</td>
                <td className="nowrap">{vm.acquiredAt ? formatTime(vm.acquiredAt) : "—"}</td>
                <td>
                  {vm.acquiredAt && canControl(me, vm) ? (
                    <button
                      type="button"
                      className="small"
                      disabled={releasing}
                      onClick={() => {
                        // Release deletes the VM, as Delete does, and asks first as Delete does.
                        if (window.confirm(`Release ${vm.name}? It is stopped and deleted; its disk cannot be recovered.`)) release.mutate({ vmId: vm.id });
                      }}
                    >
                      Release
                    </button>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}
