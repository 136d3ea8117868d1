/**
 * Warm pools (seed vmspool): each pool keeps `size` VMs of one spec ready in its staging
 * state (Running, Paused, Suspended or Stopped; see STAGING_STATES). Ready means the VM's ready condition (cloud-init
 * finished, readiness.ts), not merely SSH answering. acquire hands one out (resuming or starting it) and
 * the keeper replaces it at once; release stops and deletes it: VMs never go back to a pool.
 *
 * Every member is a VM row (poolId set) before its clone starts, so a crash leaves nothing
 * the sweep at start-up cannot find. All state changes go through the lifecycle.
 *
 * A delete marks the pool first (Pool.deletingAt): from then on it makes and hands out no
 * members. Each member goes to exactly one side through a compare-and-set on acquiredAt:
 * an acquire that claimed it keeps it (it is detached from the pool, not deleted), and the
 * delete takes and removes the rest.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { Recorder } from "../audit/recorder.ts";
import { authorizedKeysOf, INSTALL_KEYS_COMMAND } from "../auth/ssh-keys.ts";
import { assertWithinQuota } from "../auth/users.ts";
import type { Db } from "../db.ts";
import { NotRunningError, type Manager } from "../driver/manager.ts";
import { HangarError, errorDetail, errorMessage, userMessage } from "../errors.ts";
import { announceRowChange, type VmBus, type VmChange } from "../vms/bus.ts";
import type { Lifecycle } from "../vms/lifecycle.ts";
import { isTransient, type State } from "../vms/state.ts";
import { cleanupVm } from "../vms/wait.ts";

import type { StagingState } from "../../lib/vocabulary.ts";

export { STAGING_STATES, type StagingState } from "../../lib/vocabulary.ts";

/** The VM state a member waits in: a Paused member's qemu runs, so it is Running. */
export function memberState(staging: string): string {
  return staging === "Paused" ? "Running" : staging;
}

/** Members that wait with a live guest count once it is ready. */
function waitsBooted(staging: string): boolean {
  return staging === "Running" || staging === "Paused";
}

export interface PoolSpec {
  name: string;
  imageId: string;
  cpus: number;
  memoryMiB: number;
  userData?: string;
  size: number;
  staging: StagingState;
  /** The host placement picked (server/cluster/): the pool is made there, on this host. */
  hostId?: string;
}

export interface Acquired {
  vmId: string;
  name: string;
  host: string;
  sshPort: number;
  user: string;
  /** The VM's own private key (OpenSSH format), unless the caller registered its own. */
  privateKey?: string;
}

export interface PoolDeps {
  db: Db;
  lifecycle: Lifecycle;
  recorder: Recorder;
  /** Where VM changes are published: a member that falls off its staging is replaced at once. */
  bus: VmBus;
  driverFor: (vmId: string) => Manager;
  log?: (message: string) => void;
  /** Backoff after a failed member: first delay, doubling up to the max. */
  backoffMs?: { first: number; max: number };
  /** How long a member may take to be ready before it counts as failed. */
  readyTimeoutMs?: number;
  /** Why this host cannot run one more VM of `memoryMiB` now, or undefined (server/cluster/). */
  noRoom?: (memoryMiB: number) => Promise<string | undefined>;
  /** Whether this host is in maintenance: its pools make no new member until it ends (host.restore kicks them). */
  inMaintenance?: () => Promise<boolean>;
  /** Where other machines reach this host's VM forwards (what acquire reports as `host`). */
  sshAddress?: () => string;
  /**
   * How long after a hand-out the pool waits before it boots the replacement: the new
   * owner's first login runs on the CPU a replacement's boot would take (under TCG a boot
   * keeps a core busy for seconds). An acquire that finds the pool empty refills it at once.
   */
  refillDelayMs?: number;
}

const KEEPER = "pool-keeper";
/** States a member passes through on its way to staging: it counts towards the size. */
const ON_THE_WAY = ["Initial", "Cloning", "Stopped", "Starting", "Running", "Stopping", "Suspending", "Suspended"];
/** States a member rests in; in any other an action is under way on it. */
const RESTING: readonly State[] = ["Initial", "Stopped", "Running", "Suspended", "ErrorUnknown"];

export type Pools = ReturnType<typeof createPools>;

export function createPools({
  db,
  lifecycle,
  recorder,
  bus,
  driverFor,
  log = () => undefined,
  backoffMs = { first: 1000, max: 60_000 },
  readyTimeoutMs = 120_000,
  noRoom,
  inMaintenance = async () => false,
  sshAddress,
  refillDelayMs = 2000,
}: PoolDeps) {
  /** Says "a member became ready" to waiting acquirers. */
  const ready = new EventEmitter();
  ready.setMaxListeners(0);
  const filling = new Map<string, Promise<void>>();
  const deleting = new Map<string, Promise<void>>();
  const failures = new Map<string, number>();
  /** Pools whose filler looks once more before it ends: something changed during its pass. */
  const again = new Set<string>();
  /** Pools whose next pass also sweeps what a restart left behind (see sweep). */
  const afterRestart = new Set<string>();
  /** Members an acquire of this process is handing out: no restart cut those short. */
  const handing = new Set<string>();
  /** Refills waiting out refillDelayMs after a hand-out; close() cancels them. */
  const refills = new Set<NodeJS.Timeout>();
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  /** A pool event; `vm` names the member (its id only while the row exists). */
  async function record(poolName: string, action: string, ok: boolean, message: string, vm?: { id: string | null; name: string }) {
    return recorder.record({
      stream: "vm",
      vm: { id: vm?.id ?? null, name: vm?.name ?? poolName },
      actor: KEEPER,
      action: `pool-${action}`,
      ok,
      message: `Pool ${poolName}: ${message}`,
    });
  }

  /** The pool, unless it is gone or being deleted. */
  async function loadPool(poolId: string) {
    const pool = await db.pool.findUnique({ where: { id: poolId } });
    if (!pool) throw new HangarError("NOT_FOUND", `No pool with id "${poolId}".`);
    if (pool.deletingAt) throw new HangarError("NOT_FOUND", `Pool "${pool.name}" is being deleted; it hands out no more VMs.`);
    return pool;
  }

  async function beingDeleted(poolId: string): Promise<boolean> {
    const pool = await db.pool.findUnique({ where: { id: poolId }, select: { deletingAt: true } });
    return !pool || pool.deletingAt !== null;
  }

  /**
   * Stops and deletes a member nobody holds. Forced off at once: its disk goes anyway, and a
   * paused guest ignores the power button. `settleMs`: how long an action under way may take.
   */
  function discard(vmId: string, actor: string, settleMs: number): Promise<void> {
    return cleanupVm(lifecycle.instance(vmId, actor), settleMs, 0);
  }

  /** Waits until the VM is ready; a member whose cloud-init failed is no member to hand out. */
  async function waitForReady(vmId: string, timeoutMs: number): Promise<void> {
    const readiness = await lifecycle.waitForReady(vmId, timeoutMs);
    if (readiness.state !== "ready") throw new HangarError("DRIVER_FAILED", `The VM is not ready: ${readiness.detail}.`);
  }

  /** Waits until the VM's SSH server greets (cheaper than a login); throws after `timeoutMs`. */
  async function waitForSshBanner(vmId: string, sshPort: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const driver = driverFor(vmId);
    while (!(await driver.sshAnswers(sshPort))) {
      if (!(await driver.running())) throw new NotRunningError(`VM ${vmId}'s qemu ended while its SSH was awaited`);
      if (Date.now() >= deadline) throw new HangarError("WAIT_FAILED", `VM ${vmId} did not answer SSH within ${Math.round(timeoutMs / 1000)} s.`);
      await sleep(50);
    }
  }

  /**
   * Creates one member and brings it to the staging state. Returns false, making nothing,
   * once the pool is being deleted; a member begun before stops at its next step.
   */
  async function addMember(pool: {
    id: string;
    name: string;
    imageId: string;
    cpus: number;
    memoryMiB: number;
    userData: string | null;
    staging: string;
  }): Promise<boolean> {
    // Members live on the pool's host, which is this one: only its keeper fills the pool.
    const hostId = await lifecycle.hostId();
    // A member boots to be ready (and is then suspended or kept running): that needs room.
    const full = pool.staging !== "Stopped" && noRoom ? await noRoom(pool.memoryMiB) : undefined;
    if (full) throw new HangarError("HOST_FULL", `no room for another member: ${full}`);
    const vm = await db.$transaction(async (tx) => {
      // Writing the pool row locks it: a delete mark either came first (no member is made)
      // or waits until this member exists, so the delete finds it.
      const open = await tx.pool.updateMany({ where: { id: pool.id, deletingAt: null }, data: { deletingAt: null } });
      if (open.count === 0) return undefined;
      return tx.vm.create({
        data: {
          hostId,
          name: `${pool.name}-${randomBytes(3).toString("hex")}`,
          imageId: pool.imageId,
          cpus: pool.cpus,
          memoryMiB: pool.memoryMiB,
          userData: pool.userData,
          poolId: pool.id,
        },
      });
    });
    if (!vm) return false;
    try {
      await lifecycle.cloneVm(vm.id, KEEPER);
      if (pool.staging !== "Stopped" && !(await beingDeleted(pool.id))) {
        await lifecycle.startVm(vm.id, KEEPER);
        // Suspend only a guest that is ready, so an acquired one is ready at once.
        await waitForReady(vm.id, readyTimeoutMs);
        if (pool.staging === "Suspended" && !(await beingDeleted(pool.id))) await lifecycle.suspendVm(vm.id, KEEPER);
        if (pool.staging === "Paused") await driverFor(vm.id).pause();
      }
    } catch (error) {
      await discard(vm.id, KEEPER, 5000).catch(() => undefined);
      throw error;
    }
    // Being deleted: the delete waits for this filler, then removes the member.
    if (await beingDeleted(pool.id)) return false;
    await record(pool.name, "replenished", true, `${vm.name} is ready (${pool.staging})`, vm);
    ready.emit(pool.id);
    return true;
  }

  /**
   * Deletes the members that fell off the pool's staging state, for the filler to replace: a
   * member whose qemu died (the reconciler marked it Stopped), one someone started, a clone
   * or suspend a crash rolled back. Only the filler sweeps, between members, so none is one
   * it is making. After a restart it also takes members in the middle of an action (the
   * reconciler's first pass has settled what a crash left) and the ones the keeper had taken
   * to delete when the restart came.
   */
  async function sweep(pool: { id: string; name: string; staging: string }, leftByRestart: boolean): Promise<void> {
    const staged = memberState(pool.staging);
    const fallen = await db.vm.findMany({
      where: {
        poolId: pool.id,
        hostId: await lifecycle.hostId(),
        OR: [
          { acquiredAt: null, state: leftByRestart ? { not: staged } : { in: RESTING.filter((state) => state !== staged) } },
          // A boot watched again after a restart whose cloud-init failed: never to be handed out.
          { acquiredAt: null, state: staged, readyState: "error" },
          ...(leftByRestart ? [{ acquiredBy: KEEPER }] : []),
        ],
      },
    });
    for (const vm of fallen.filter((v) => !lifecycle.isBusy(v.id))) {
      // Taken first, as a resize or a delete takes members: no acquire claims it meanwhile.
      const taken =
        vm.acquiredAt !== null ||
        (await db.vm.updateMany({ where: { id: vm.id, acquiredAt: null, state: vm.state }, data: { acquiredAt: new Date(), acquiredBy: KEEPER } })).count === 1;
      if (!taken) continue;
      const why = vm.acquiredAt
        ? "taken to be deleted when Hangar restarted"
        : vm.state === staged
          ? "not ready (its cloud-init failed)"
          : `${vm.state}, off the pool's staging (${pool.staging})`;
      try {
        await discard(vm.id, KEEPER, 5000);
        await record(pool.name, "swept", true, `${vm.name} was ${why}: deleted, to be replaced`, { id: null, name: vm.name });
      } catch (error) {
        log(`pool ${pool.name}: sweeping ${vm.name} failed: ${errorMessage(error)}`);
      }
    }
  }

  /** Fills `poolId` up to its size, first sweeping members off its staging; one filler per pool at a time. */
  function kick(poolId: string): Promise<void> {
    const running = filling.get(poolId);
    if (running) {
      // The pass under way may have looked already.
      again.add(poolId);
      return running;
    }
    if (closed) return Promise.resolve();
    const run = (async () => {
      for (;;) {
        if (closed) return;
        again.delete(poolId);
        const pool = await db.pool.findUnique({ where: { id: poolId } });
        if (!pool || pool.deletingAt || (pool.hostId !== null && pool.hostId !== (await lifecycle.hostId()))) return;
        await sweep(pool, afterRestart.delete(poolId));
        const members = await db.vm.count({ where: { poolId, acquiredAt: null, state: { in: ON_THE_WAY } } });
        if (members >= pool.size) {
          failures.delete(poolId);
          if (again.has(poolId)) continue;
          return;
        }
        // A new member would be one more VM on a host being emptied.
        if (await inMaintenance()) return;
        try {
          if (!(await addMember(pool))) return;
          failures.delete(poolId);
        } catch (error) {
          if (await beingDeleted(poolId)) return;
          const count = (failures.get(poolId) ?? 0) + 1;
          failures.set(poolId, count);
          const delay = Math.min(backoffMs.first * 2 ** (count - 1), backoffMs.max);
          log(`pool ${pool.name}: a member failed (${errorDetail(error)}); retrying in ${delay} ms`);
          await record(pool.name, "failed", false, `a new member failed: ${userMessage(error)}; retry in ${Math.round(delay / 1000)} s`);
          await sleep(delay);
        }
      }
    })().finally(() => filling.delete(poolId));
    filling.set(poolId, run);
    return run;
  }

  /**
   * Claims a ready member for the caller: exactly one caller gets each VM, and owns it. A
   * claim racing a delete keeps what it won: the delete takes members with the same
   * compare-and-set on acquiredAt and detaches the ones it lost.
   */
  async function claim(poolId: string, staging: string, { actor, ownerId }: { actor: string; ownerId?: string }) {
    // A Running or Paused member counts once it is ready; Suspended ones were ready when saved.
    const ready = waitsBooted(staging) ? { readyState: "ready" } : {};
    const state = memberState(staging);
    const candidates = await db.vm.findMany({ where: { poolId, acquiredAt: null, state, ...ready }, orderBy: { createdAt: "asc" } });
    for (const candidate of candidates) {
      if (lifecycle.isBusy(candidate.id)) continue;
      // Marked before the claim can be seen: start-up never takes it for one a restart cut short.
      handing.add(candidate.id);
      const won = await db.vm.updateMany({
        where: { id: candidate.id, acquiredAt: null, state, ...ready, pool: { deletingAt: null } },
        data: { acquiredAt: new Date(), acquiredBy: actor, ownerId: ownerId ?? null },
      });
      if (won.count === 1) return candidate;
      handing.delete(candidate.id);
    }
    return undefined;
  }

  /**
   * Hands out a ready VM of the pool, resuming or starting it: a Stopped member is handed
   * out once it is ready again, a Suspended one (it resumes the boot it was ready in) once
   * its SSH answers. Waits for a replacement when none is ready, up to `timeoutMs`.
   */
  async function acquire(poolId: string, options: { actor: string; ownerId?: string; timeoutMs: number; publicKey?: string }): Promise<Acquired> {
    const pool = await loadPool(poolId);
    // An acquired VM is its new owner's, so it counts against their quota as a created one would.
    if (options.ownerId) await assertWithinQuota(db, options.ownerId, pool.cpus, pool.memoryMiB);
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      const vm = await claimWithin(pool, deadline, options);
      try {
        return await handOut(pool, vm, deadline, options);
      } catch (error) {
        // A member whose qemu was ended under the hand-out (killed, the OOM killer) is no
        // fault of the pool's: the caller gets the next one, or the refill, within the time asked.
        const ended = await endedUnder(vm.id, error);
        await record(pool.name, "failed", false, `${vm.name} could not be handed out: ${ended ? "its qemu ended meanwhile" : userMessage(error)}`, vm);
        await discard(vm.id, KEEPER, 5000).catch(() => undefined);
        if (ended && Date.now() < deadline) continue;
        throw error instanceof HangarError
          ? error
          : new HangarError("DRIVER_FAILED", `Acquiring from pool "${pool.name}" failed: ${userMessage(error)}`, { cause: error });
      } finally {
        handing.delete(vm.id);
        refillSoon(pool.id);
      }
    }
  }

  /**
   * Whether a hand-out failed because the member's qemu ended under it, rather than for a
   * fault of the host's (qemu that cannot start at all is the host's, and so is each next member's).
   */
  async function endedUnder(vmId: string, error: unknown): Promise<boolean> {
    if (error instanceof NotRunningError || (error instanceof HangarError && error.code === "NOT_RUNNING")) return true;
    if (error instanceof HangarError) return false;
    return !(await driverFor(vmId)
      .running()
      .catch(() => true));
  }

  /** A claimed member, waiting for one to be ready (kicking the filler) until `deadline`. */
  async function claimWithin(
    pool: { id: string; name: string; staging: string },
    deadline: number,
    options: { actor: string; ownerId?: string; timeoutMs: number },
  ) {
    let vm = await claim(pool.id, pool.staging, options);
    while (!vm) {
      void kick(pool.id);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new HangarError(
          "WAIT_FAILED",
          `No VM of pool "${pool.name}" became ready within ${Math.round(options.timeoutMs / 1000)} s; try again or grow the pool.`,
        );
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          ready.off(pool.id, done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        ready.on(pool.id, done);
      });
      await loadPool(pool.id);
      vm = await claim(pool.id, pool.staging, options);
    }
    return vm;
  }

  /** Brings a claimed member to running and ready as its staging needs, with the caller's keys. */
  async function handOut(
    pool: { name: string; staging: string },
    vm: { id: string; name: string; state: string; poolId: string | null },
    deadline: number,
    options: { actor: string; ownerId?: string; publicKey?: string },
  ): Promise<Acquired> {
    if (vm.state !== "Running") await lifecycle.startVm(vm.id, options.actor);
    if (pool.staging === "Paused") {
      const driver = driverFor(vm.id);
      await driver.unpause();
      // The guest's clock stood still while paused; its agent, where it has one, sets it.
      void driver.syncGuestClock().catch(() => false);
    }
    // Members were ready when staged. A Running one has run on since, so sshd's banner shows
    // it still answers. A Paused or Suspended one carries on from the instant it was ready
    // in and is handed out once qemu runs it: a banner probe first cost the resumed guest a
    // second sshd under TCG's cold code cache, about 0.2 s that the caller's login did not
    // get back. A Stopped member boots afresh and has to be ready again.
    if (pool.staging === "Stopped") await waitForReady(vm.id, Math.max(deadline - Date.now(), 30_000));
    const started = await db.vm.findUniqueOrThrow({ where: { id: vm.id }, include: { image: { select: { loginUser: true } } } });
    if (pool.staging === "Running") await waitForSshBanner(vm.id, started.sshPort ?? 0, Math.max(deadline - Date.now(), 30_000));
    const user = started.image.loginUser;
    const driver = driverFor(vm.id);
    const identity = await driver.identity();
    // The caller's key for this acquire, and the new owner's own keys (Account page).
    const keys = [...(options.publicKey ? [options.publicKey.trim()] : []), ...(await authorizedKeysOf(db, options.ownerId))];
    if (keys.length > 0) {
      const added = await driver.shell([...INSTALL_KEYS_COMMAND], started.sshPort ?? 0, identity.privateKeyFile, { user, input: `${keys.join("\n")}\n` });
      if (added.exitCode !== 0) throw new Error(`could not install the keys: ${added.stderr}`);
    }
    const privateKey = options.publicKey ? undefined : identity.privateKey;
    // The last write before the answer: start-up takes a claimed member without it for an acquire cut short.
    const handed = await record(pool.name, "acquired", true, `${vm.name} handed to ${options.actor}`, vm);
    // Its owner and pool changed, not its state: open lists show it as the new owner's now.
    await announceRowChange({ db, bus }, vm, handed.id);
    return { vmId: vm.id, name: vm.name, host: sshAddress?.() ?? driver.sshHost(), sshPort: started.sshPort ?? 0, user, privateKey };
  }

  /** Kicks `poolId` after refillDelayMs, unless the pool keeper closes first. */
  function refillSoon(poolId: string): void {
    const timer = setTimeout(() => {
      refills.delete(timer);
      void kick(poolId);
    }, refillDelayMs);
    timer.unref();
    refills.add(timer);
  }

  /** Stops and deletes an acquired VM; the pool already made its replacement. */
  async function release(vmId: string, actor: string): Promise<void> {
    const vm = await db.vm.findUnique({ where: { id: vmId }, include: { pool: true } });
    if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}"; it may have been released already.`);
    if (!vm.acquiredAt) throw new HangarError("INVALID_INPUT", `VM "${vm.name}" was not acquired from a pool; delete it instead.`);
    // Refused before the stop: the delete would be refused after it, with the guest already down.
    if (vm.protection) throw new HangarError("VM_PROTECTED", `VM "${vm.name}" is protected from deletion; turn its protection off first.`);
    // Held for the whole release: the reconciler must not complete it between its stop and delete.
    await lifecycle.hold(vmId, async () => {
      // Written before the stop: if Hangar ends in between, its next start completes the release.
      await db.vm.update({ where: { id: vmId }, data: { releasePending: true } });
      try {
        await cleanupVm(lifecycle.instance(vmId, actor), 30_000);
      } catch (error) {
        // Answered to the caller, who decides what next: not carried on behind their back.
        await db.vm.updateMany({ where: { id: vmId }, data: { releasePending: false } });
        throw error;
      }
    });
    await record(vm.pool?.name ?? "(deleted)", "released", true, `${vm.name} released by ${actor}`, { id: null, name: vm.name });
    if (vm.poolId) void kick(vm.poolId);
  }

  async function createPool(spec: PoolSpec, actor: string) {
    if (await db.pool.findUnique({ where: { name: spec.name } })) {
      throw new HangarError("ALREADY_EXISTS", `A pool named "${spec.name}" already exists; pick another name.`);
    }
    const image = await db.image.findUnique({ where: { id: spec.imageId } });
    if (!image) throw new HangarError("NOT_FOUND", `No image with id "${spec.imageId}"; pick one from the Images page.`);
    const self = await lifecycle.hostId();
    // The router forwards a create to the host placement picked: reaching this elsewhere is a bug.
    if (spec.hostId !== undefined && spec.hostId !== self) throw new Error(`pool ${spec.name} was placed on host ${spec.hostId}, not on this one (${self})`);
    const pool = await db.pool.create({ data: { ...spec, userData: spec.userData ?? null, hostId: self } });
    await record(pool.name, "created", true, `size ${pool.size}, staging ${pool.staging}, by ${actor}`);
    void kick(pool.id);
    return pool;
  }

  /** Changes the size: grows at once, or deletes surplus members that are not handed out. */
  async function resizePool(poolId: string, size: number) {
    const { name } = await loadPool(poolId);
    const resized = await db.pool.updateMany({ where: { id: poolId, deletingAt: null }, data: { size } });
    if (resized.count === 0) throw new HangarError("NOT_FOUND", `Pool "${name}" is being deleted; it cannot be resized.`);
    const pool = await db.pool.findUniqueOrThrow({ where: { id: poolId } });
    const idle = await db.vm.findMany({ where: { poolId, acquiredAt: null, state: memberState(pool.staging) }, orderBy: { createdAt: "desc" } });
    const total = await db.vm.count({ where: { poolId, acquiredAt: null, state: { in: ON_THE_WAY } } });
    for (const vm of idle.slice(0, Math.max(0, total - size))) {
      if (lifecycle.isBusy(vm.id)) continue;
      const taken = await db.vm.updateMany({ where: { id: vm.id, acquiredAt: null }, data: { acquiredAt: new Date(), acquiredBy: KEEPER } });
      if (taken.count === 1) await discard(vm.id, KEEPER, 5000);
    }
    void kick(poolId);
    return pool;
  }

  /**
   * Deletes the pool. Seed: Close. It is marked first, so it makes and hands out no more
   * members; then the members not handed out are deleted, and the ones handed out are
   * detached (they stay their holders' VMs). A delete cut short by a restart is finished
   * at start-up; a second call while one runs waits for it.
   */
  async function deletePool(poolId: string, actor: string): Promise<void> {
    const pool = await db.pool.findUnique({ where: { id: poolId } });
    if (!pool) throw new HangarError("NOT_FOUND", `No pool with id "${poolId}".`);
    const marked = await db.pool.updateMany({ where: { id: poolId, deletingAt: null }, data: { deletingAt: new Date() } });
    if (marked.count === 1) await record(pool.name, "deleting", true, `being deleted by ${actor}; it hands out no more VMs`);
    // Waiting acquirers look again now and fail with the reason.
    ready.emit(poolId);
    let run = deleting.get(poolId);
    if (!run) {
      run = removePool(pool, actor).finally(() => deleting.delete(poolId));
      deleting.set(poolId, run);
    }
    return run;
  }

  async function removePool(pool: { id: string; name: string }, actor: string): Promise<void> {
    // The keeper stops at its next step; after it, no member is on the way.
    await filling.get(pool.id);
    let kept = 0;
    for (const vm of await db.vm.findMany({ where: { poolId: pool.id }, orderBy: { createdAt: "asc" } })) {
      const taken = await db.vm.updateMany({ where: { id: vm.id, acquiredAt: null }, data: { acquiredAt: new Date(), acquiredBy: KEEPER } });
      // One the keeper had taken itself (this delete before a restart, a resize, a sweep) is no holder's.
      if (taken.count === 0 && vm.acquiredBy !== KEEPER) {
        kept += 1;
        continue;
      }
      await discard(vm.id, actor, 30_000).catch((error: unknown) => log(`pool ${pool.name}: ${vm.name}: ${errorMessage(error)}`));
    }
    await db.vm.updateMany({ where: { poolId: pool.id }, data: { poolId: null } });
    await db.pool.delete({ where: { id: pool.id } });
    const detached = kept === 0 ? "" : `; ${kept} VM${kept === 1 ? "" : "s"} handed out stay with their holders`;
    await record(pool.name, "deleted", true, `deleted by ${actor}${detached}`);
  }

  /**
   * Members an acquire had claimed when a restart cut it short, before it handed them out:
   * its "acquired" event, the last thing it writes before it answers, is missing. The caller
   * got an error, not the VM, and acquires again; the VM may be half-resumed, so it is not
   * put back but deleted, as a release would. One its owner protected was found and is kept.
   */
  async function undoAcquires(pool: { id: string; name: string }, self: string): Promise<void> {
    const unfinished = await db.vm.findMany({
      where: {
        poolId: pool.id,
        hostId: self,
        acquiredAt: { not: null },
        acquiredBy: { not: KEEPER },
        protection: false,
        events: { none: { action: "pool-acquired" } },
      },
    });
    for (const vm of unfinished.filter((v) => !handing.has(v.id) && !lifecycle.isBusy(v.id))) {
      try {
        await discard(vm.id, KEEPER, 5000);
        const message = `${vm.name}: an acquire by ${vm.acquiredBy ?? "?"} cut short by a restart was undone (the VM was never handed out); it was deleted`;
        await record(pool.name, "acquire-undone", true, message, { id: null, name: vm.name });
      } catch (error) {
        log(`pool ${pool.name}: undoing the acquire of ${vm.name} failed: ${errorMessage(error)}`);
      }
    }
  }

  /**
   * A VM changed (the lifecycle or the reconciler recorded it). When it waits in a pool, that
   * pool's filler looks again: a member whose qemu died is replaced now, not at a restart.
   */
  function heard(change: VmChange): void {
    if (change.vmId === "") return;
    // A deleted row no longer names its pool: an idle member deleted by hand (vm.delete) would
    // leave its pool short until the next restart, so every open pool of this host looks.
    if (change.state === "Gone") {
      void lifecycle
        .hostId()
        .then((hostId) => db.pool.findMany({ where: { hostId, deletingAt: null }, select: { id: true } }))
        .then((open) => open.forEach((pool) => void kick(pool.id)))
        .catch((error: unknown) => log(`pool keeper: after the delete of ${change.vmName}: ${errorMessage(error)}`));
      return;
    }
    if (isTransient(change.state)) return;
    void db.vm
      .findUnique({ where: { id: change.vmId }, select: { poolId: true, acquiredAt: true } })
      .then((vm) => (vm?.poolId && !vm.acquiredAt ? kick(vm.poolId) : undefined))
      .catch((error: unknown) => log(`pool keeper: after a change of ${change.vmName}: ${errorMessage(error)}`));
  }

  /**
   * At start-up: acquires a restart cut short are undone; pool deletes it cut short are
   * finished; members that a crash left off their staging state (half-made, resolved by the
   * reconciler to another state, or taken by the keeper to delete) are deleted by each
   * pool's next pass; Running members not yet ready are watched again; then every pool is
   * filled, and from now on refilled whenever a member changes.
   */
  async function start() {
    const self = await lifecycle.hostId();
    const pools = await db.pool.findMany({ where: { hostId: self } });
    // Before the deletes: a delete leaves claimed members with their holders.
    for (const pool of pools) await undoAcquires(pool, self);
    for (const pool of pools.filter((p) => p.deletingAt)) {
      void deletePool(pool.id, KEEPER).catch((error: unknown) => log(`pool ${pool.name}: finishing its delete failed: ${errorMessage(error)}`));
    }
    const open = pools.filter((p) => !p.deletingAt);
    for (const pool of open) afterRestart.add(pool.id);
    // Running members whose boot a previous process was still watching: watch them again
    // (and pause them once ready, for Paused pools).
    const booting = await db.vm.findMany({
      where: {
        pool: { staging: { in: ["Running", "Paused"] } },
        hostId: self,
        acquiredAt: null,
        state: "Running",
        OR: [{ readyState: null }, { readyState: "booting" }],
      },
      include: { pool: { select: { staging: true } } },
    });
    for (const vm of booting) {
      void lifecycle
        .waitForReady(vm.id, readyTimeoutMs)
        .then((readiness) => (vm.pool?.staging === "Paused" && readiness.state === "ready" ? driverFor(vm.id).pause() : undefined))
        .catch(() => undefined);
    }
    // Ready members of Paused pools that a crash caught before their pause: pause them now.
    const unpaused = await db.vm.findMany({
      where: { pool: { staging: "Paused", deletingAt: null }, hostId: self, acquiredAt: null, state: "Running", readyState: "ready" },
    });
    for (const vm of unpaused.filter((v) => !lifecycle.isBusy(v.id))) {
      await driverFor(vm.id)
        .pause()
        .catch((error: unknown) => log(`pool member ${vm.name}: pausing failed: ${errorMessage(error)}`));
    }
    unsubscribe ??= bus.subscribe(heard);
    for (const pool of open) void kick(pool.id);
  }

  async function close() {
    closed = true;
    for (const timer of refills) clearTimeout(timer);
    refills.clear();
    unsubscribe?.();
    await Promise.allSettled([...filling.values(), ...deleting.values()]);
  }

  async function listPools() {
    const pools = await db.pool.findMany({
      orderBy: { createdAt: "asc" },
      include: { image: { select: { name: true } }, vms: { orderBy: { createdAt: "asc" } } },
    });
    return pools.map((pool) => ({
      ...pool,
      ready: pool.vms.filter((vm) => !vm.acquiredAt && vm.state === memberState(pool.staging) && (!waitsBooted(pool.staging) || vm.readyState === "ready"))
        .length,
      filling: filling.has(pool.id),
      deleting: pool.deletingAt !== null,
    }));
  }

  return { createPool, resizePool, deletePool, acquire, release, start, close, kick, listPools };
}
