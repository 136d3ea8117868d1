/**
 * Several hosts, one Hangar. This folder holds everything that exists only because several
 * Hangar processes share one PostgreSQL database: where a call runs (here, forwarded to the
 * VM's host as a job, or refused because that host is offline), where a new VM goes
 * (placement by capacity), and the job queue between hosts. Kept apart so that the routers,
 * the lifecycle and the driver stay single-host code: one tRPC middleware (api/trpc.ts) asks
 * `locate` and either lets the procedure run here or forwards it, as Incus' members do.
 *
 * SQLite means one host: every VM is here, placement picks this host, and no queue runs.
 */
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";
import type { Recorder } from "../audit/recorder.ts";
import type { Db } from "../db.ts";
import { databaseProvider } from "../database-url.ts";
import { HangarError, type ErrorCode } from "../errors.ts";
import { bridgesOf, inMaintenanceSentence, type Hosts } from "../hosts.ts";
import type { VmChange } from "../vms/bus.ts";
import { isState } from "../vms/state.ts";
import { choosePlacement, HOLDS_MEMORY, noRoom, type HostLoad } from "./capacity.ts";
import { callOutcome, decodeData, type ForwardedCall } from "./calls.ts";
import { createJobs, type HostRef } from "./jobs.ts";

export type Location =
  | { kind: "here" }
  /** Another live host: the call is forwarded to it. */
  | { kind: "remote"; host: HostRef }
  | OfflineHost;

/** A host without a recent heartbeat: nothing acts on its VMs. */
export interface OfflineHost {
  kind: "offline";
  host: HostRef;
  /** How long it has not beaten; null when its row is gone. */
  silentForMs: number | null;
  /** It beats, but this process cannot reach it: on SQLite nothing is forwarded. */
  unreachable?: true;
}

export interface ClusterOptions {
  db: Db;
  databaseUrl: string;
  hosts: Hosts;
  log?: (message: string) => void;
  /**
   * Which hosts hold an image's file (undefined: every host; the image store decides, as
   * hosts fetch missing images from each other).
   */
  imageHolders?: (imageId: string) => Promise<Set<string> | undefined>;
}

/** What a forwarded call's outcome raises on the caller's side when it failed. */
export class ForwardedFailure extends Error {
  constructor(
    readonly code: TRPC_ERROR_CODE_KEY,
    readonly domainCode: ErrorCode | null,
    message: string,
  ) {
    super(message);
    this.name = "ForwardedFailure";
  }
}

export type Cluster = ReturnType<typeof createCluster>;

/** The least time a caller waits for a host to take its job. */
const MIN_PICKUP_MS = 30_000;

export function createCluster({ db, databaseUrl, hosts, log = () => undefined, imageHolders }: ClusterOptions) {
  const shared = databaseProvider(databaseUrl) === "postgres";
  // A live host busy with a burst of calls (twenty starts at once) takes its jobs in turn:
  // its callers wait at least half a minute for that before they give up on it.
  const jobs = shared ? createJobs({ databaseUrl, pickupMs: Math.max(hosts.offlineAfterMs, MIN_PICKUP_MS), log }) : undefined;

  function offline(host: { id: string; name: string; heartbeatAt: Date }): OfflineHost {
    return { kind: "offline", host: { id: host.id, name: host.name }, silentForMs: hosts.now().getTime() - host.heartbeatAt.getTime() };
  }

  /** Where the host `hostId` is, seen from this process. Rows without a host are this one's. */
  async function locate(hostId: string | null): Promise<Location> {
    const self = await hosts.selfId();
    if (hostId === null || hostId === self) return { kind: "here" };
    const host = await db.host.findUnique({ where: { id: hostId }, select: { id: true, name: true, heartbeatAt: true } });
    if (!host) return { kind: "offline", host: { id: hostId, name: hostId }, silentForMs: null };
    if (!hosts.isOnline(host)) return offline(host);
    // On SQLite no other process can be reached: another host's row is as good as offline.
    if (!jobs) return { ...offline(host), unreachable: true };
    return { kind: "remote", host: { id: host.id, name: host.name } };
  }

  async function locateVm(vmId: string): Promise<Location> {
    const vm = await db.vm.findUnique({ where: { id: vmId }, select: { hostId: true } });
    // A missing VM is the procedure's NOT_FOUND to report, here.
    return vm ? locate(vm.hostId) : { kind: "here" };
  }

  async function locatePool(poolId: string): Promise<Location> {
    const pool = await db.pool.findUnique({ where: { id: poolId }, select: { hostId: true } });
    return pool ? locate(pool.hostId) : { kind: "here" };
  }

  /** Where host `hostId` runs: a missing one is the procedure's NOT_FOUND to report, here. */
  async function locateHost(hostId: string): Promise<Location> {
    const host = await db.host.findUnique({ where: { id: hostId }, select: { id: true } });
    return host ? locate(host.id) : { kind: "here" };
  }

  /** Why no host in `hosts` takes a VM on host bridge `bridge`, with the bridges they do offer. */
  function noBridgeSentence(bridge: string, hosts: { name: string; bridges: string }[]): string {
    const offered = [...new Set(hosts.flatMap(bridgesOf))].sort();
    const where = hosts.length === 1 && hosts[0] ? `host ${hosts[0].name}` : "any host";
    return offered.length === 0
      ? `No host bridge is open to VMs on ${where}; an admin lists them in HANGAR_BRIDGES.`
      : `Bridge "${bridge}" is not open to VMs on ${where}; pick one that is: ${offered.join(", ")}.`;
  }

  /** The sentence for an action refused because its host is offline. */
  function offlineSentence(location: OfflineHost, what: string): string {
    return `${what} is on host ${location.host.name}, which is offline (${offlineReason(location)}); nothing acts on its VMs until that host's Hangar runs again.`;
  }

  /** The sentence for a call about a host (host.evacuate) refused because that host is offline. */
  function hostOfflineSentence(location: OfflineHost): string {
    return `Host ${location.host.name} is offline (${offlineReason(location)}); this needs its Hangar running.`;
  }

  function offlineReason(location: OfflineHost): string {
    return location.unreachable
      ? "this Hangar runs on SQLite, which is one host; run every host on one PostgreSQL database"
      : location.silentForMs === null
        ? "it is no longer registered"
        : `no heartbeat for ${Math.round(location.silentForMs / 1000)} s`;
  }

  /** Each host's load: memory for VMs, what its running VMs take, whether it holds the image. */
  async function loads(imageId: string | undefined): Promise<(HostLoad & { heartbeatAt: Date; bridges: string; maintenanceSince: Date | null })[]> {
    const [rows, running, holders] = await Promise.all([
      db.host.findMany({
        orderBy: { name: "asc" },
        select: { id: true, name: true, heartbeatAt: true, memoryLimitMiB: true, bridges: true, maintenanceSince: true },
      }),
      db.vm.groupBy({ by: ["hostId"], where: { state: { in: [...HOLDS_MEMORY] } }, _sum: { memoryMiB: true } }),
      imageId && imageHolders ? imageHolders(imageId) : Promise.resolve(undefined),
    ]);
    const taken = new Map(running.map((r) => [r.hostId, r._sum.memoryMiB ?? 0]));
    return rows.map((row) => ({
      ...row,
      online: hosts.isOnline(row),
      allocatedMemoryMiB: taken.get(row.id) ?? 0,
      hasImage: holders ? holders.has(row.id) : true,
    }));
  }

  /**
   * The host a new VM (or pool) of `memoryMiB` goes to: `hostId` when given, if it is online
   * and has room (refused with a sentence otherwise), else the live host with room that
   * placement prefers. On SQLite only this host. A host in maintenance takes none.
   */
  async function place(input: { hostId?: string; memoryMiB: number; imageId?: string; bridge?: string }): Promise<HostRef & { here: boolean }> {
    const self = await hosts.selfId();
    const all = await loads(input.imageId);
    let candidates = (jobs ? all : all.filter((h) => h.id === self)).filter((h) => h.maintenanceSince === null);
    // A VM on a host bridge goes where that bridge is open to VMs.
    const { bridge } = input;
    const offers = (host: { bridges: string }) => bridge === undefined || bridgesOf(host).includes(bridge);
    if (input.hostId !== undefined) {
      const host = all.find((h) => h.id === input.hostId);
      if (!host) throw new HangarError("NOT_FOUND", `No host with id "${input.hostId}"; host.list names the hosts.`);
      if (host.maintenanceSince !== null) throw new HangarError("HOST_IN_MAINTENANCE", inMaintenanceSentence(host.name));
      if (!host.online || !candidates.includes(host)) {
        const location = host.online ? { ...offline(host), unreachable: true as const } : offline(host);
        throw new HangarError("HOST_OFFLINE", `Host ${host.name} is offline (${offlineReason(location)}); pick another host, or leave hostId out.`);
      }
      if (!offers(host)) throw new HangarError("INVALID_INPUT", noBridgeSentence(bridge ?? "", [host]));
      const full = noRoom(host, input.memoryMiB);
      if (full) throw new HangarError("HOST_FULL", full);
      return { id: host.id, name: host.name, here: host.id === self };
    }
    if (candidates.length === 0 && all.some((h) => h.maintenanceSince !== null)) {
      throw new HangarError(
        "HOST_IN_MAINTENANCE",
        "Every host is in maintenance (evacuated by an admin); end one's maintenance first (host.restore, hangar host restore).",
      );
    }
    if (bridge !== undefined) {
      const bridged = candidates.filter(offers);
      if (bridged.length === 0) throw new HangarError("INVALID_INPUT", noBridgeSentence(bridge, candidates));
      candidates = bridged;
    }
    const choice = choosePlacement(candidates, input.memoryMiB);
    if ("refusal" in choice) throw new HangarError(candidates.some((h) => h.online) ? "HOST_FULL" : "HOST_OFFLINE", choice.refusal);
    return { id: choice.host.id, name: choice.host.name, here: choice.host.id === self };
  }

  /** Why this host cannot run one more VM of `memoryMiB` now (a start, a pool fill), or undefined. */
  async function noRoomHere(memoryMiB: number): Promise<string | undefined> {
    const self = await hosts.selfId();
    const host = (await loads(undefined)).find((h) => h.id === self);
    return host ? noRoom(host, memoryMiB) : undefined;
  }

  /**
   * Runs `call` on `host` and returns its result, or throws what the owning host threw
   * (ForwardedFailure with its codes and sentence, or TIMEOUT naming the host).
   */
  async function forward(host: HostRef, call: ForwardedCall, budgetMs: number): Promise<unknown> {
    if (!jobs) throw new HangarError("HOST_OFFLINE", `Host ${host.name} cannot be reached from here: SQLite is one host.`);
    // A host that dies with the call in hand never answers: its heartbeat says so long
    // before the call's budget (minutes) runs out.
    const gone = new AbortController();
    const watch = setInterval(
      () => {
        void locate(host.id).then(
          (location) => {
            if (location.kind !== "offline") return;
            gone.abort(
              new HangarError(
                "HOST_OFFLINE",
                `Host ${host.name} went offline (${offlineReason(location)}) before it answered ${call.path}; if it had begun, it may have run in part: check its result once that host's Hangar runs again.`,
              ),
            );
          },
          (error: unknown) => log(`watching host ${host.name}: ${error instanceof Error ? error.message : String(error)}`),
        );
      },
      Math.min(5000, Math.floor(hosts.offlineAfterMs / 3)),
    );
    watch.unref();
    let output: unknown;
    try {
      output = await jobs.call(host, call, budgetMs, call.path, gone.signal);
    } finally {
      clearInterval(watch);
    }
    const outcome = callOutcome.safeParse(output);
    if (!outcome.success) throw new Error(`host ${host.name} answered ${call.path} with an unreadable job output`);
    if (outcome.data.ok) return decodeData(outcome.data.data);
    throw new ForwardedFailure(outcome.data.code, outcome.data.domainCode, outcome.data.message);
  }

  /** Works this host's queue: each forwarded call goes to `run` (server/cluster/serve.ts). */
  async function serve(run: (data: unknown) => Promise<object>): Promise<void> {
    if (!jobs) return;
    await jobs.serve(await hosts.selfId(), run);
  }

  /** At start-up: VMs and pools without a host (from before hosts) become this host's, once. */
  async function adoptHostless(): Promise<number> {
    const self = await hosts.selfId();
    const [vms] = await Promise.all([
      db.vm.updateMany({ where: { hostId: null }, data: { hostId: self } }),
      db.pool.updateMany({ where: { hostId: null }, data: { hostId: self } }),
    ]);
    return vms.count;
  }

  /**
   * This host beats again after `offlineForMs` without (a restart after a crash, or a stall):
   * each of its VMs the reconciler has something to check on gets an event saying so. A
   * Stopped or never-started VM has no qemu to look for: a thousand of them would get a
   * thousand events saying nothing.
   */
  async function recordBack(offlineForMs: number, recorder: Recorder): Promise<void> {
    const self = await hosts.selfId();
    const vms = await db.vm.findMany({ where: { hostId: self, state: { notIn: ["Stopped", "Initial"] } }, select: { id: true, name: true } });
    const message = `Host ${hosts.name} is back after ${Math.round(offlineForMs / 1000)} s offline; its reconciler checks this VM again`;
    for (const vm of vms) await recorder.record({ stream: "vm", vm, actor: "reconciler", action: "host-back", ok: true, message });
  }

  /**
   * Watches the other hosts' heartbeats. When one goes offline, or comes back, each of its VMs
   * goes to `deliver` as a change (its state unchanged): open dashboards then show, or drop,
   * the host-offline badge and its actions without reloading. Each host watches for its own
   * listeners, so nothing is relayed. Returns a stop function.
   */
  function watchHosts(deliver: (change: VmChange) => void, intervalMs = Math.min(5000, Math.floor(hosts.offlineAfterMs / 3))): () => void {
    const online = new Map<string, boolean>();
    let running = false;
    const look = async () => {
      const self = await hosts.selfId();
      for (const host of await hosts.list()) {
        const was = online.get(host.id);
        online.set(host.id, host.online);
        if (host.id === self || was === undefined || was === host.online) continue;
        log(`host ${host.name} is ${host.online ? "back online" : "offline: it sends no heartbeat"}`);
        const vms = await db.vm.findMany({ where: { hostId: host.id }, select: { id: true, name: true, state: true } });
        for (const vm of vms) if (isState(vm.state)) deliver({ vmId: vm.id, vmName: vm.name, state: vm.state, eventId: "" });
      }
    };
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      void look()
        .catch((error: unknown) => log(`watching hosts: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => (running = false));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  return {
    shared,
    recordBack,
    watchHosts,
    locate,
    locateVm,
    locatePool,
    locateHost,
    offlineSentence,
    hostOfflineSentence,
    place,
    noRoomHere,
    forward,
    serve,
    adoptHostless,
    close: async () => jobs?.close(),
  };
}
