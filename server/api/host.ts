/** The hosts of this Hangar: the machines VMs run on (one on SQLite). */
import { z } from "zod";
import { relocateAll, relocationSummary, type EvacuatedVm } from "../cluster/evacuate.ts";
import { HangarError } from "../errors.ts";
import { singleHostSentence, type Hosts } from "../hosts.ts";
import { hostListOutput, relocationOutput } from "./outputs.ts";
import { id } from "./schemas.ts";
import { auditChange, IN_PROCESS, procedure, restRoutes, router, type Context } from "./trpc.ts";

const rest = restRoutes("host");

type HostRow = Awaited<ReturnType<Hosts["list"]>>[number];

/**
 * A host as the caller may see it. Where hosts call each other (their internal addresses)
 * and their machines' boot ids are the admins': others get what placement and the
 * dashboard need, as image paths are kept from them.
 */
export function hostView(host: HostRow, isAdmin: boolean) {
  return { ...host, apiAddress: isAdmin ? host.apiAddress : null, bootId: isAdmin ? host.bootId : null };
}

/** Evacuating every VM of a host takes as long as their disks' copies and their guests' boots. */
const RELOCATION_BUDGET_SEC = 6 * 3600;

const relocatedVm = {
  id: true,
  name: true,
  state: true,
  memoryMiB: true,
  imageId: true,
  network: true,
  bridge: true,
  acquiredAt: true,
  pool: { select: { name: true } },
} as const;

type RelocatedRow = EvacuatedVm & { imageId: string; network: string; bridge: string | null };

/** Where an evacuation or restore is refused on SQLite. */
const TAKES_ITS_VMS = ", so there is no other host to take its VMs.";

/** Host `hostId`, on a Hangar of several hosts; `onSqlite` ends the sentence that refuses the call on one. */
async function hostOrNotFound(ctx: Context, hostId: string, onSqlite: string) {
  if (!ctx.hangar.cluster.shared) throw new HangarError("INVALID_INPUT", singleHostSentence(onSqlite));
  const host = await ctx.hangar.db.host.findUnique({ where: { id: hostId }, select: { id: true, name: true } });
  if (!host) throw new HangarError("NOT_FOUND", `No host with id "${hostId}"; host.list (hangar host ls) names them.`);
  return host;
}

async function vmsWhere(ctx: Context, where: { hostId: string } | { evacuatedFrom: string; hostId: { not: string } }): Promise<RelocatedRow[]> {
  const rows = await ctx.hangar.db.vm.findMany({ where, orderBy: { name: "asc" }, select: relocatedVm });
  return rows.map(({ pool, acquiredAt, ...vm }) => ({ ...vm, waitsInPool: pool && !acquiredAt ? pool.name : null }));
}

/**
 * Calls as the caller: a stop, start or move is the caller's own call, routed to the VM's host
 * like any other (and recorded as theirs). Made here, not imported at the top: the app router
 * imports this one.
 *
 * A Running VM is marked before its stop, as vm.restart marks it: if Hangar ends before the
 * VM runs again (where it went, or where it was), the reconciler of whichever host then has
 * it starts it. That reconciler may also start it first while all goes well: so be it.
 */
async function asCaller(ctx: Context) {
  const { createCaller } = await import("./root.ts");
  const caller = createCaller({ ...ctx, transport: IN_PROCESS });
  const { db } = ctx.hangar;
  const mark = (vmId: string, restartPending: boolean) => db.vm.updateMany({ where: { id: vmId }, data: { restartPending } });
  return {
    stop: async (vmId: string) => {
      await mark(vmId, true);
      await caller.vm.stop({ id: vmId });
    },
    start: async (vmId: string) => {
      try {
        await caller.vm.start({ id: vmId });
      } catch (error) {
        const row = await db.vm.findUnique({ where: { id: vmId }, select: { state: true } });
        if (row?.state !== "Running" && row?.state !== "Starting") throw error;
      } finally {
        await mark(vmId, false);
      }
    },
    move: async (vmId: string, hostId: string) => void (await caller.vm.move({ id: vmId, hostId })),
  };
}

/** Hosts whose evacuation or restore runs in this process (each runs on the host it is about), with which. */
const relocating = new Map<string, string>();

/** Runs `work` as the one evacuation or restore of `host` under way; a second is refused. */
async function alone<T>(host: { id: string; name: string }, doing: string, work: () => Promise<T>): Promise<T> {
  const under = relocating.get(host.id);
  if (under) throw new HangarError("HOST_BUSY", `Host ${host.name} is being ${under} already; try again once that is done.`);
  relocating.set(host.id, doing);
  try {
    return await work();
  } finally {
    relocating.delete(host.id);
  }
}

/** Where `vm` would go: a Stopped VM takes no memory there; a Running one starts at once. */
function placementOf(vm: RelocatedRow, running: boolean) {
  return { memoryMiB: running ? vm.memoryMiB : 0, imageId: vm.imageId, bridge: vm.network === "bridge" && vm.bridge ? vm.bridge : undefined };
}

/** host.evacuate, here on that host: maintenance on, then each VM relocated. */
async function evacuate(ctx: Context, host: { id: string; name: string }) {
  const { db, cluster, moves } = ctx.hangar;
  const others = (await ctx.hangar.hosts.list()).filter((h) => h.id !== host.id && h.online && h.maintenanceSince === null);
  if (others.length === 0) {
    throw new HangarError(
      "HOST_OFFLINE",
      `No other host is online and out of maintenance to take host ${host.name}'s VMs; start Hangar on another host first.`,
    );
  }
  await db.host.updateMany({ where: { id: host.id, maintenanceSince: null }, data: { maintenanceSince: new Date() } });
  const outcome = await relocateAll(await vmsWhere(ctx, { hostId: host.id }), {
    ...(await asCaller(ctx)),
    target: (vm, running) => cluster.place(placementOf(vm, running)),
    // Here, on the VM's host: the move remembers where the VM came from.
    move: (vmId, hostId) => moves.moveVm(vmId, hostId, ctx.actor, { evacuation: true }),
  });
  await auditChange(ctx, { action: "host-evacuate", target: host.name, message: `Evacuated host ${host.name}: ${relocationSummary(outcome)}` });
  return { host: host.name, ...outcome };
}

/** host.restore, here on that host: maintenance off, its pools filled, its evacuated VMs brought back. */
async function restore(ctx: Context, host: { id: string; name: string }) {
  const { db, cluster, pools } = ctx.hangar;
  await db.host.update({ where: { id: host.id }, data: { maintenanceSince: null } });
  // Here, on that host: its pools make the members they did not make meanwhile (a pool
  // this fails for is filled again at its next change).
  for (const pool of await db.pool.findMany({ where: { hostId: host.id, deletingAt: null }, select: { id: true } })) {
    void pools.kick(pool.id).catch(() => undefined);
  }
  const outcome = await relocateAll(await vmsWhere(ctx, { evacuatedFrom: host.id, hostId: { not: host.id } }), {
    ...(await asCaller(ctx)),
    target: (vm, running) => cluster.place({ ...placementOf(vm, running), hostId: host.id }),
  });
  await auditChange(ctx, {
    action: "host-restore",
    target: host.name,
    message: `Ended the maintenance of host ${host.name}: ${relocationSummary(outcome)}`,
  });
  return { host: host.name, ...outcome };
}

/** host.remove: a host that has gone for good leaves the list, with what only it held. */
async function removeHost(ctx: Context, hostId: string) {
  const { db, hosts } = ctx.hangar;
  const host = await hostOrNotFound(ctx, hostId, "; it has no other host to remove.");
  const row = await db.host.findUniqueOrThrow({ where: { id: host.id } });
  if (hosts.isOnline(row)) {
    throw new HangarError(
      "INVALID_INPUT",
      `Host ${host.name} is online; stop its Hangar first, then remove it (a Hangar started there later registers it anew).`,
    );
  }
  const [vms, pools] = await Promise.all([db.vm.count({ where: { hostId: host.id } }), db.pool.count({ where: { hostId: host.id } })]);
  if (vms > 0 || pools > 0) {
    throw new HangarError(
      "INVALID_INPUT",
      `Host ${host.name} still has ${vms} VM${vms === 1 ? "" : "s"} and ${pools} pool${pools === 1 ? "" : "s"}; start its Hangar and evacuate it (and delete its pools) first.`,
    );
  }
  // Its image copies go with the row; its usage history is of no host any more.
  await db.$transaction([db.metricPoint.deleteMany({ where: { kind: "host", subjectId: host.id } }), db.host.delete({ where: { id: host.id } })]);
  await auditChange(ctx, { action: "host-remove", target: host.name, message: `Removed host ${host.name}` });
  return { id: host.id, name: host.name };
}

export const hostRouter = router({
  list: procedure
    .meta({ permission: "read", openapi: rest("GET", "/hosts", "Every host: online or not, and what its VMs take of it") })
    .output(hostListOutput)
    .query(async ({ ctx }) => {
      const isAdmin = ctx.principal?.role === "admin";
      return (await ctx.hangar.hosts.list()).map((host) => hostView(host, isAdmin));
    }),
  /**
   * Puts a host in maintenance (no VM is placed or moved there) and moves its VMs to the
   * others: a Stopped VM moves, a Running one is stopped, moved and started there. Runs on that
   * host, which serves the disks; answers once each VM has gone or stayed (with the reason).
   */
  evacuate: procedure
    .meta({
      permission: "admin",
      runsOn: "host",
      forwardBudgetSec: RELOCATION_BUDGET_SEC,
      openapi: rest("POST", "/hosts/{id}/evacuate", "Keep VMs off a host and move its VMs to the others (admins)"),
    })
    .input(z.object({ id }))
    .output(relocationOutput)
    .mutation(async ({ ctx, input }) => {
      const host = await hostOrNotFound(ctx, input.id, TAKES_ITS_VMS);
      return alone(host, "evacuated", () => evacuate(ctx, host));
    }),
  /**
   * Ends a host's maintenance and brings back the VMs its evacuation moved away (those moved
   * by hand since stay where they are), each as it went: Running ones stopped, moved and
   * started again.
   */
  restore: procedure
    .meta({
      permission: "admin",
      runsOn: "host",
      forwardBudgetSec: RELOCATION_BUDGET_SEC,
      openapi: rest("POST", "/hosts/{id}/restore", "End a host's maintenance and bring back its evacuated VMs (admins)"),
    })
    .input(z.object({ id }))
    .output(relocationOutput)
    .mutation(async ({ ctx, input }) => {
      const host = await hostOrNotFound(ctx, input.id, TAKES_ITS_VMS);
      return alone(host, "restored", () => restore(ctx, host));
    }),
  /**
   * Removes a host that has gone for good (Incus' `cluster remove`): offline, with no VM and no
   * pool left. Its image copies and usage history go with it.
   */
  remove: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/hosts/{id}/delete", "Remove an offline host that has no VMs or pools left (admins)") })
    .input(z.object({ id }))
    .output(z.object({ id: z.string(), name: z.string() }))
    .mutation(({ ctx, input }) => removeHost(ctx, input.id)),
});
