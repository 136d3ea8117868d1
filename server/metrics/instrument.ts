/**
 * Timing for /metrics without touching the code it times: the lifecycle's actions and the
 * pool's acquire are wrapped once, where hangar.ts wires them, so every caller (routers,
 * the pool keeper, the reconciler) goes through the timed functions.
 */
import type { Db } from "../db.ts";
import type { Pools } from "../pool/pool.ts";
import type { Lifecycle } from "../vms/lifecycle.ts";
import type { Metrics } from "./service.ts";

export function timedLifecycle(lifecycle: Lifecycle, metrics: Metrics): Lifecycle {
  return {
    ...lifecycle,
    cloneVm: (...args) => metrics.observeLifecycle("clone", () => lifecycle.cloneVm(...args)),
    startVm: (...args) => metrics.observeLifecycle("start", () => lifecycle.startVm(...args)),
    stopVm: (...args) => metrics.observeLifecycle("stop", () => lifecycle.stopVm(...args)),
    suspendVm: (...args) => metrics.observeLifecycle("suspend", () => lifecycle.suspendVm(...args)),
    deleteVm: (...args) => metrics.observeLifecycle("delete", () => lifecycle.deleteVm(...args)),
  };
}

export function timedPools(pools: Pools, metrics: Metrics, db: Db): Pools {
  const names = new Map<string, string>();
  async function nameOf(poolId: string): Promise<string> {
    const known = names.get(poolId);
    if (known) return known;
    const pool = await db.pool.findUnique({ where: { id: poolId }, select: { name: true } });
    // An unknown id is the caller's NOT_FOUND; it gets no series of its own.
    const name = pool?.name ?? "(unknown)";
    if (pool) names.set(poolId, name);
    return name;
  }
  return {
    ...pools,
    acquire: async (poolId, options) => metrics.observeAcquire(await nameOf(poolId), () => pools.acquire(poolId, options)),
  };
}
