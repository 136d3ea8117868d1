"use client";
/**
 * One warm pool: its spec and staging state, the fill progress, the size (admins resize),
 * Acquire (operators and admins) with where to SSH, Delete pool (admins), and its members.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { AcquiredVm, type Acquired } from "./acquired-vm.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatMemory } from "./format.ts";
import { PoolMembers } from "./pool-members.tsx";
import { ResizePoolForm } from "./resize-pool-form.tsx";
import { useMe } from "./session.tsx";
import { useTRPC, type PoolRow } from "./trpc.ts";
import { useSingleFlight } from "./use-single-flight.ts";

/** Still making members: the keeper is at work, or fewer are ready than the size asks. */
export function isFilling(pool: Pick<PoolRow, "filling" | "ready" | "size" | "deleting">): boolean {
  return !pool.deleting && (pool.filling || pool.ready < pool.size);
}

export function PoolCard({ pool }: { pool: PoolRow }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const headingId = useId();
  const sizeId = useId();
  const [error, setError] = useState<string>();
  const [acquired, setAcquired] = useState<Acquired>();
  const settle = {
    onMutate: () => setError(undefined),
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () => queryClient.invalidateQueries(trpc.pool.pathFilter()),
  };
  const acquire = useMutation(trpc.pool.acquire.mutationOptions({ ...settle, onSuccess: setAcquired }));
  const remove = useMutation(trpc.pool.delete.mutationOptions(settle));
  const once = useSingleFlight();
  const admin = me?.role === "admin";
  const filling = isFilling(pool);
  // The hand-out stays on screen while its VM is still a member (until released).
  const shown = acquired && pool.vms.some((vm) => vm.id === acquired.vmId) ? acquired : undefined;

  function deletePool() {
    if (window.confirm(`Delete pool "${pool.name}" and its VMs not handed out? VMs handed out stay with their holders.`)) remove.mutate({ id: pool.id });
  }

  return (
    <section className="card stack" data-testid="pool" data-pool-name={pool.name} aria-labelledby={headingId}>
      <div className="section-head">
        <h2 id={headingId}>{pool.name}</h2>
        <div className="buttons">
          {me && me.role !== "viewer" ? (
            <button
              type="button"
              className="primary"
              disabled={acquire.isPending || remove.isPending || pool.deleting}
              onClick={() => once(() => acquire.mutateAsync({ poolId: pool.id, timeoutSec: 120 }))}
            >
              Acquire
            </button>
          ) : null}
          {admin ? (
            <button type="button" className="danger" disabled={remove.isPending || pool.deleting} onClick={deletePool}>
              Delete pool
            </button>
          ) : null}
          {acquire.isPending ? <span className="muted">acquiring…</span> : null}
          {remove.isPending || pool.deleting ? (
            <span className="muted" data-testid="pool-deleting">
              being deleted…
            </span>
          ) : null}
        </div>
      </div>
      <dl className="props">
        <dt>Image</dt>
        <dd>{pool.image.name}</dd>
        <dt>Spec</dt>
        <dd>
          {pool.cpus} CPU · {formatMemory(pool.memoryMiB)}
        </dd>
        <dt>Staging</dt>
        <dd data-testid="pool-staging">{pool.staging}</dd>
        <dt>Ready</dt>
        <dd className="progress-cell" data-testid="pool-ready">
          {filling ? <progress value={pool.ready} max={Math.max(pool.size, 1)} aria-label={`${pool.name} ready members`} /> : null}
          <span>
            {pool.ready} of {pool.size}
            {filling ? " (filling…)" : ""}
          </span>
        </dd>
        <dt>{admin ? <label htmlFor={sizeId}>Size</label> : "Size"}</dt>
        <dd>{admin ? <ResizePoolForm poolId={pool.id} size={pool.size} inputId={sizeId} /> : pool.size}</dd>
      </dl>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      {shown ? <AcquiredVm acquired={shown} /> : null}
      <PoolMembers vms={pool.vms} />
    </section>
  );
}
