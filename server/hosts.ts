/**
 * This Hangar process's host in the Host table: claimed at start-up with a lease, kept
 * alive by a heartbeat that also reports the host's capacity. Every VM row names its host;
 * only that host's Hangar acts on it. A host whose heartbeat is older than
 * HANGAR_HOST_OFFLINE_AFTER_SEC is offline.
 *
 * The lease (Host.leaseOwner + leaseUntil, renewed by each beat) keeps two processes from
 * being one host: a second process with the same name is refused at start-up while the
 * first one's lease runs. A lease left by a process of this machine that no longer exists
 * (a crash, then a quick restart) is taken over at once.
 *
 * Heartbeats and leases are times one host writes and the others compare: they are on the
 * database's clock, which all hosts share, not on each machine's own.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { z } from "zod";
import { HOLDS_MEMORY, memoryLimitMiB } from "./cluster/capacity.ts";
import type { Db } from "./db.ts";
import { connectAddress } from "./driver/qemu/ports.ts";

export interface HostsOptions {
  db: Db;
  name?: string;
  apiAddress: string;
  /** The accelerator in use, once the probe decided (never waits for it). */
  accelerator: () => string;
  /** qemu's version, once known (never waits for it); "" until then. */
  qemuVersion?: () => string;
  /** A heartbeat older than this means the host is offline (HANGAR_HOST_OFFLINE_AFTER_SEC). */
  offlineAfterMs?: number;
  /** HANGAR_MEMORY_OVERCOMMIT and HANGAR_MEMORY_RESERVE_MIB. */
  memory?: { overcommit: number; reserveMiB: number };
  /** HANGAR_FORWARD_ADDRESS: where VM port forwards listen. */
  forwardAddress?: string;
  /** HANGAR_BRIDGES: the host bridges VMs may join here. */
  bridges?: string[];
  /** Reads the database's clock (PostgreSQL); without it (SQLite: one host) this machine's clock is the only one. */
  databaseNow?: () => Promise<Date>;
}

/** Raised at start-up when another live process holds this host name. */
export class HostNameTakenError extends Error {}

export type Hosts = ReturnType<typeof createHosts>;

const MIB = 1024 * 1024;

/**
 * Where other machines reach this host's VM forwards: the forward address itself, or for
 * 0.0.0.0 (every address) the machine's first external IPv4 address. 127.0.0.1 stays so:
 * such forwards are only reachable on this machine.
 */
export function sshAddressFor(forwardAddress: string): string {
  if (forwardAddress !== "0.0.0.0") return connectAddress(forwardAddress);
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  return external?.address ?? "127.0.0.1";
}

/** PostgreSQL's clock, read through `db`: the one every host of a shared database agrees on. */
export function postgresNow(db: Db): () => Promise<Date> {
  const rows = z.tuple([z.object({ now: z.date() })]);
  return async () => {
    const [row] = rows.parse(await db.$queryRaw`SELECT now() AS now`);
    return row.now;
  };
}

/** The bridges a Host row lists (stored comma-separated). */
export function bridgesOf(host: { bridges: string }): string[] {
  return host.bridges.split(",").filter(Boolean);
}

/** Why a call about another host is refused on SQLite; `rest` says what is missing (", so there is no other host to …"). */
export function singleHostSentence(rest: string): string {
  return `This Hangar is a single host (several hosts share one PostgreSQL database)${rest}`;
}

/** Why host `name`, in maintenance (host.evacuate), takes no VM now. */
export function inMaintenanceSentence(name: string): string {
  return `Host ${name} is in maintenance (evacuated by an admin) and takes no VMs; pick another host, or end its maintenance first (host.restore, hangar host restore ${name}).`;
}

/** Whether the process `pid` of this machine still exists. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, as another user's.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

export function createHosts({
  db,
  name = os.hostname(),
  apiAddress,
  accelerator,
  qemuVersion = () => "",
  offlineAfterMs = 15_000,
  memory = { overcommit: 1, reserveMiB: 1024 },
  forwardAddress = "127.0.0.1",
  bridges = [],
  databaseNow,
}: HostsOptions) {
  /** This process's claim on the host name: machine, pid and a random part. */
  const leaseToken = `${os.hostname()}/${process.pid}/${randomBytes(6).toString("hex")}`;
  let registered: Promise<string> | undefined;
  let selfKnown: string | undefined;
  let leased = false;
  let lastBeat = 0;
  /** The database's clock minus this machine's, measured at each beat. */
  let skewMs = 0;

  /**
   * Now on the database's clock. Another machine's clock a minute behind would otherwise
   * write heartbeats every other host reads as a minute old (offline while it beats), and
   * one ahead would keep a dead host online as long.
   */
  function now(): Date {
    return new Date(Date.now() + skewMs);
  }

  async function syncClock(): Promise<void> {
    if (!databaseNow) return;
    const before = Date.now();
    const database = await databaseNow();
    skewMs = database.getTime() - Math.round((before + Date.now()) / 2);
  }

  /** What the heartbeat reports, besides what the host's VMs take. */
  function facts() {
    const memoryMiB = Math.floor(os.totalmem() / MIB);
    return {
      apiAddress,
      heartbeatAt: now(),
      accelerator: accelerator(),
      qemuVersion: qemuVersion(),
      freeMemoryMiB: Math.floor(os.freemem() / MIB),
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? "",
      memoryMiB,
      memoryLimitMiB: memoryLimitMiB(memoryMiB, memory.overcommit, memory.reserveMiB),
      sshAddress: sshAddressFor(forwardAddress),
      bridges: bridges.join(","),
    };
  }

  /** vCPUs and memory of the host's VMs that run now. */
  async function allocated(hostId: string) {
    const sum = await db.vm.aggregate({ where: { hostId, state: { in: [...HOLDS_MEMORY] } }, _sum: { cpus: true, memoryMiB: true } });
    return { allocatedCpus: sum._sum.cpus ?? 0, allocatedMemoryMiB: sum._sum.memoryMiB ?? 0 };
  }

  async function register(): Promise<string> {
    await syncClock();
    const data = facts();
    const host = await db.host.upsert({ where: { name }, create: { name, ...data }, update: data });
    selfKnown = host.id;
    lastBeat = Date.now();
    return host.id;
  }

  /** This host's id, registering it on first use (without a lease: tests, tools). */
  function selfId(): Promise<string> {
    registered ??= register();
    return registered;
  }

  /**
   * Takes this host name for this process, at start-up. Throws HostNameTakenError while
   * another process holds it. Returns for how long the host had been offline (0: it was not,
   * or it is new), so the caller can say it is back.
   */
  async function claim(): Promise<{ id: string; offlineForMs: number }> {
    await syncClock();
    const at = now();
    const lease = { leaseOwner: leaseToken, leaseUntil: new Date(at.getTime() + offlineAfterMs) };
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const existing = await db.host.findUnique({ where: { name } });
      if (!existing) {
        try {
          const created = await db.host.create({ data: { name, ...facts(), ...lease } });
          return taken(created.id, 0);
        } catch {
          // Another process created it meanwhile: look again.
          continue;
        }
      }
      const free = !existing.leaseOwner || !existing.leaseUntil || existing.leaseUntil < at || holderIsGone(existing.leaseOwner);
      if (!free) {
        const [machine, pid] = (existing.leaseOwner ?? "").split("/");
        throw new HostNameTakenError(
          `Host name "${name}" is held by another Hangar process (pid ${pid ?? "?"} on ${machine ?? "?"}) until ${existing.leaseUntil?.toISOString()}; ` +
            "give this one its own HANGAR_HOST_NAME, or stop the other first.",
        );
      }
      const won = await db.host.updateMany({ where: { id: existing.id, leaseOwner: existing.leaseOwner }, data: { ...facts(), ...lease } });
      const silentForMs = at.getTime() - existing.heartbeatAt.getTime();
      if (won.count === 1) return taken(existing.id, silentForMs > offlineAfterMs ? silentForMs : 0);
    }
    throw new HostNameTakenError(
      `Host name "${name}" is being claimed by another Hangar process at the same moment; start only one with that HANGAR_HOST_NAME.`,
    );
  }

  function taken(id: string, offlineForMs: number) {
    leased = true;
    selfKnown = id;
    registered = Promise.resolve(id);
    lastBeat = Date.now();
    return { id, offlineForMs };
  }

  /** A lease of a process of this machine that no longer runs: a crash this start follows. */
  function holderIsGone(owner: string): boolean {
    const [machine, pid] = owner.split("/");
    return machine === os.hostname() && pid !== undefined && /^\d+$/.test(pid) && !processExists(Number(pid));
  }

  /**
   * Reports the host's facts and renews the lease. Resolves "lost" when another process took
   * the lease (this one stalled past it), and with how long it had been offline otherwise.
   */
  async function beat(): Promise<{ lost: true } | { lost: false; offlineForMs: number }> {
    const id = await selfId();
    await syncClock();
    const data = { ...facts(), ...(await allocated(id)) };
    const since = Date.now() - lastBeat;
    if (leased) {
      const renewed = await db.host.updateMany({
        where: { id, leaseOwner: leaseToken },
        data: { ...data, leaseUntil: new Date(now().getTime() + offlineAfterMs) },
      });
      if (renewed.count === 0) return { lost: true };
    } else {
      await db.host.update({ where: { id }, data });
    }
    lastBeat = Date.now();
    return { lost: false, offlineForMs: since > offlineAfterMs ? since : 0 };
  }

  /**
   * Beats every `intervalMs` (by default a third of the offline time); returns a stop
   * function. `onLost`: another process took the host over; `onBack`: this process had not
   * beaten for longer than the offline time (it was shown offline) and beats again.
   */
  function startHeartbeat(
    handlers: { onLost: () => void; onBack: (offlineForMs: number) => void; onError?: (error: unknown) => void },
    intervalMs = Math.min(5000, Math.floor(offlineAfterMs / 3)),
  ): () => void {
    const timer = setInterval(() => {
      void beat().then(
        (result) => {
          if (result.lost) handlers.onLost();
          else if (result.offlineForMs > 0) handlers.onBack(result.offlineForMs);
        },
        (error: unknown) => handlers.onError?.(error),
      );
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Gives the host name up (a clean shutdown): the next process with it starts at once. */
  async function release(): Promise<void> {
    if (!leased || !selfKnown) return;
    leased = false;
    await db.host.updateMany({ where: { id: selfKnown, leaseOwner: leaseToken }, data: { leaseOwner: null, leaseUntil: null } });
  }

  /** Whether `host` beats: this host always does while it runs. */
  function isOnline(host: { id: string; heartbeatAt: Date }): boolean {
    return host.id === selfKnown || now().getTime() - host.heartbeatAt.getTime() <= offlineAfterMs;
  }

  /** Every host, with whether it is online. */
  async function list() {
    const hosts = await db.host.findMany({ orderBy: { name: "asc" }, omit: { leaseOwner: true } });
    return hosts.map((host) => ({ ...host, bridges: bridgesOf(host), online: isOnline(host) }));
  }

  /** Whether an admin has put this host in maintenance (host.evacuate) and not ended it yet. */
  async function inMaintenance(): Promise<boolean> {
    const self = await db.host.findUnique({ where: { id: await selfId() }, select: { maintenanceSince: true } });
    return Boolean(self?.maintenanceSince);
  }

  return {
    name,
    selfId,
    claim,
    release,
    beat,
    startHeartbeat,
    isOnline,
    now,
    list,
    inMaintenance,
    offlineAfterMs,
    sshAddress: sshAddressFor(forwardAddress),
  };
}
