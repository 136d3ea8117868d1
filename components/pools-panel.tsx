"use client";
/**
 * Warm pools: one card per pool, and the create form for admins. Members are VMs, so the
 * live stream (LiveUpdates) refreshes this list; while a pool fills or is being deleted, it
 * is also refetched every 2 s to move the progress bar through states the stream does not announce.
 */
import { useQuery } from "@tanstack/react-query";
import { CreatePoolForm } from "./create-pool-form.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { PoolCard, isFilling } from "./pool-card.tsx";
import { useMe } from "./session.tsx";
import { useTRPC, type PoolRow } from "./trpc.ts";

const anyChanging = (pools: PoolRow[] | undefined) => pools?.some((pool) => isFilling(pool) || pool.deleting) ?? false;

export function PoolsPanel() {
  const trpc = useTRPC();
  const me = useMe();
  const pools = useQuery(trpc.pool.list.queryOptions(undefined, { refetchInterval: (query) => (anyChanging(query.state.data) ? 2000 : false) }));

  return (
    <div className="stack">
      {pools.isPending ? (
        <p className="muted">Loading pools…</p>
      ) : pools.isError ? (
        <ErrorAlert message={errorText(pools.error)} />
      ) : pools.data.length === 0 ? (
        <p className="empty">No pools yet.</p>
      ) : (
        pools.data.map((pool) => <PoolCard key={pool.id} pool={pool} />)
      )}
      {me?.role === "admin" ? <CreatePoolForm /> : null}
    </div>
  );
}
