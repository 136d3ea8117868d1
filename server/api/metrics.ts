import { z } from "zod";
import { HangarError } from "../errors.ts";
import { bridgesOf } from "../hosts.ts";
import { RANGES } from "../metrics/history.ts";
import { hostPointSchema, pointsOf, vmPointSchema } from "../metrics/points.ts";
import type { HostPoint } from "../metrics/sampler.ts";
import { id } from "./schemas.ts";
import { procedure, router, type Context } from "./trpc.ts";

const range = z.enum(RANGES, "range must be 1h (full resolution) or 24h (one point a minute).").default("1h");

async function requireVm(ctx: Context, vmId: string) {
  const vm = await ctx.hangar.db.vm.findUnique({ where: { id: vmId }, select: { id: true, hostId: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}"; it may have been deleted.`);
  return vm;
}

/**
 * Usage figures: a VM's or a host's history, the hosts with their capacity and heartbeat,
 * and live points as the sampler takes them (HANGAR_SAMPLE_INTERVAL_SEC).
 */
export const metricsRouter = router({
  /**
   * A VM's points over the last hour (full resolution) or 24 hours (minutes), oldest first.
   * Answered by the VM's host, which holds its full-resolution points (the database has
   * minutes); `live` says whether onVm on the host called streams the VM's new points, or the
   * caller asks again each interval instead (a VM on another host).
   */
  vm: procedure
    .meta({ permission: "read", runsOn: "vm", whenOffline: "answer-here" })
    .input(z.object({ id, range }))
    .query(async ({ ctx, input }) => {
      const vm = await requireVm(ctx, input.id);
      const sampledHere = vm.hostId === null || vm.hostId === (await ctx.hangar.hosts.selfId());
      const points = pointsOf(vmPointSchema, await ctx.hangar.metrics.history.points("vm", input.id, input.range));
      return { range: input.range, intervalSec: ctx.hangar.env.HANGAR_SAMPLE_INTERVAL_SEC, points, live: sampledHere && ctx.transport.kind !== "forwarded" };
    }),
  /** A host's points (this host when no id is given). */
  host: procedure
    .meta({ permission: "read" })
    .input(z.object({ id: id.optional(), range }).optional())
    .query(async ({ ctx, input }) => {
      const hostId = input?.id ?? (await ctx.hangar.hosts.selfId());
      const host = await ctx.hangar.db.host.findUnique({ where: { id: hostId }, select: { id: true } });
      if (!host) throw new HangarError("NOT_FOUND", `No host with id "${hostId}".`);
      const window = input?.range ?? "1h";
      const points = pointsOf(hostPointSchema, await ctx.hangar.metrics.history.points("host", hostId, window));
      return { range: window, intervalSec: ctx.hangar.env.HANGAR_SAMPLE_INTERVAL_SEC, points };
    }),
  /**
   * Every host: online while its heartbeat is younger than HANGAR_HOST_OFFLINE_AFTER_SEC,
   * its VMs, and its newest usage (this host's live; others' from their last stored minute).
   */
  hosts: procedure.meta({ permission: "read" }).query(async ({ ctx }) => {
    const { db, metrics, env } = ctx.hangar;
    const self = await ctx.hangar.hosts.selfId();
    const [hosts, counts] = await Promise.all([
      db.host.findMany({
        orderBy: { name: "asc" },
        select: { id: true, name: true, heartbeatAt: true, accelerator: true, qemuVersion: true, bridges: true, maintenanceSince: true },
      }),
      db.vm.groupBy({ by: ["hostId"], _count: { _all: true } }),
    ]);
    const stored = await metrics.history.latestStored(
      "host",
      hosts.map((h) => h.id),
    );
    // Heartbeats are on the database's clock (hosts.ts).
    const now = ctx.hangar.hosts.now().getTime();
    return hosts.map((host) => {
      const ageSec = Math.max(0, (now - host.heartbeatAt.getTime()) / 1000);
      const own = host.id === self ? metrics.hostPoint() : undefined;
      const remote = stored.get(host.id);
      const usage: HostPoint | null = own ?? (remote ? (pointsOf(hostPointSchema, [remote])[0] ?? null) : null);
      return {
        ...host,
        bridges: bridgesOf(host),
        self: host.id === self,
        heartbeatAgeSec: ageSec,
        online: ageSec <= env.HANGAR_HOST_OFFLINE_AFTER_SEC,
        vmCount: counts.find((c) => c.hostId === host.id)?._count._all ?? 0,
        usage,
      };
    });
  }),
  /** A VM's points as the sampler takes them (this host's VMs; others' arrive on their host). */
  onVm: procedure
    .meta({ permission: "read" })
    .input(z.object({ id }))
    .subscription(async function* ({ ctx, input, signal }) {
      await requireVm(ctx, input.id);
      for await (const sample of ctx.hangar.metrics.samples(signal)) {
        const vm = sample.vms.find((v) => v.id === input.id);
        if (vm) yield vm.point;
      }
    }),
  /**
   * Each sample's CPU and memory of every running VM, for the VM table's columns: this
   * host's VMs live, other hosts' from the minute their host stored last.
   */
  onUsage: procedure.meta({ permission: "read" }).subscription(async function* ({ ctx, signal }) {
    let empty = false;
    for await (const sample of ctx.hangar.metrics.samples(signal)) {
      const usages = ctx.hangar.metrics.usages(sample);
      // With nothing running, one empty sample clears a table's figures; more would make every
      // idle tab cost a message each interval however few VMs run.
      if (usages.length === 0 && empty) continue;
      empty = usages.length === 0;
      yield usages;
    }
  }),
});
