/**
 * Applying an action to a VM: compare-and-set the state row (UPDATE … WHERE state =
 * expected, so of two concurrent starts exactly one wins), call the driver, write the final
 * state and an Event, publish the change. The only writer of Vm.state: routers, the pool
 * and the reconciler all come through here.
 */
import { z } from "zod";
import type { Db } from "../db.ts";
import {
  AlreadyRunningError,
  FIRMWARES,
  HostPortTakenError,
  HostToolMissingError,
  NotRunningError,
  SavedStateLoadError,
  type Firmware,
  type Manager,
  type NetworkConfig,
  type StopOutcome,
} from "../driver/manager.ts";
import type { Actor, Recorder } from "../audit/recorder.ts";
import { authorizedKeysOf } from "../auth/ssh-keys.ts";
import { HangarError, isHangarError, namingHost, userMessage } from "../errors.ts";
import { UserDataError } from "../driver/user-data.ts";
import type { ImageFiles, LocalImage } from "../images/copies.ts";
import type { VmBus } from "./bus.ts";
import { BOOTING, NOT_RUNNING, createReadiness, isSettled, type ReadinessDeps } from "./readiness.ts";
import { isState, isTransient, transition, validActions, type Action, type State } from "./state.ts";

export interface LifecycleDeps {
  db: Db;
  bus: VmBus;
  recorder: Recorder;
  /** The driver's Manager for one VM. */
  driverFor: (vmId: string) => Manager;
  /** This host's id: only VMs of this host are acted on here (server/cluster/ forwards the others). */
  hostId: () => Promise<string>;
  /** This host's name, for what is kept on a VM and read from any host. */
  hostName: string;
  /**
   * Why this host cannot run one more VM of `memoryMiB` now, or undefined: a start beyond
   * the host's memory for VMs is refused with it (server/cluster/capacity.ts).
   */
  noRoom?: (memoryMiB: number) => Promise<string | undefined>;
  /** Readiness watch timings (tests shorten them). */
  readiness?: Pick<ReadinessDeps, "watchLimitMs" | "backoffMs">;
  /** An image's files in this host's store, fetched from another host where missing (images/copies.ts). */
  localImage: (image: ImageFiles) => Promise<LocalImage>;
}

export type { Actor };

export interface Properties {
  /** The guest's address on its user-mode network. */
  ip: string;
  /** Where the VM was cloned from (Properties.CloneInfo). */
  cloneInfo: unknown;
  sshPort: number | null;
}

/** Seed 004's Instance, bound to one VM row. */
export interface Instance {
  id(): string;
  clone(): Promise<void>;
  start(): Promise<void>;
  /** Resolves with [runErr, stopErr] like the seed: both undefined on success. */
  stop(timeoutMs: number): Promise<[Error | undefined, Error | undefined]>;
  suspendable(): boolean;
  suspend(): Promise<void>;
  delete(): Promise<void>;
  state(): Promise<State>;
  exec(command: string, ...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  properties(): Promise<Properties>;
}

const GUEST_IP = "10.0.2.15";
export const RECONCILER = "reconciler";

/** What the reconciler records: the event's message, and the VM's error when something went wrong. */
export interface Note {
  message: string;
  error?: string;
}

/** What Vm.cloneInfo records for a VM cloned from another. */
export interface CloneInfo {
  sourceVmId: string;
  sourceName: string;
}

const cloneInfoJson = z.object({ sourceVmId: z.string().min(1), sourceName: z.string().min(1) });

function cloneSource(cloneInfo: string | null): CloneInfo | undefined {
  if (!cloneInfo) return undefined;
  const parsed = cloneInfoJson.safeParse(JSON.parse(cloneInfo));
  return parsed.success ? parsed.data : undefined;
}

/** The VM row's network mode as the driver takes it. */
export function networkOf(vm: { name: string; network: string; bridge: string | null }): NetworkConfig {
  if (vm.network === "nat" || vm.network === "isolated") return { mode: vm.network };
  if (vm.network === "bridge" && vm.bridge) return { mode: "bridge", bridge: vm.bridge };
  throw new HangarError("INVALID_INPUT", `VM "${vm.name}" has an unknown network mode "${vm.network}".`);
}

const GIB = 1024 ** 3;

/** How a stop ended, for its event: a forced stop is said to be one, and why. */
export function describeStop(outcome: StopOutcome, timeoutMs: number): string {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  // A stop given no time (timeoutSec 0) is forced by its caller, not by a guest that ignored the button.
  const why = timeoutMs > 0 ? `the guest did not power off within ${seconds(timeoutMs)}` : "the stop gave the guest no time to power off";
  switch (outcome.how) {
    case "powered-off":
      return `Powered off after ${seconds(outcome.afterMs)}`;
    case "quit":
      return `Forced: ${why}, so qemu was told to quit`;
    case "killed":
      return `Forced: ${why} and qemu did not quit, so it was killed`;
  }
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

/**
 * Whether work in VM `vmId` failed because the VM stopped meanwhile (stopped, suspended,
 * deleted or its qemu gone): the caller's race with a stop, not a fault of Hangar's.
 */
export async function stoppedMeanwhile(hangar: { db: Db; driverFor: (vmId: string) => Manager }, vmId: string, error: unknown): Promise<boolean> {
  if (error instanceof NotRunningError) return true;
  const now = await hangar.db.vm.findUnique({ where: { id: vmId }, select: { state: true } });
  return now?.state !== "Running" || !(await hangar.driverFor(vmId).running());
}

export function createLifecycle({ db, bus, recorder, driverFor, hostId, hostName, noRoom, readiness: readinessTimings, localImage }: LifecycleDeps) {
  /**
   * VMs with an action under way in this process (how many hold each); the reconciler
   * leaves them alone. An action holds its VM from before its compare-and-set, so the row
   * is never in a transient state this process owns without the VM being here.
   */
  const inFlight = new Map<string, number>();
  /**
   * VMs locked for work on their disk or snapshots (Proxmox's VM lock), with what is under
   * way ("taking snapshot s1"): no lifecycle action starts on them meanwhile.
   */
  const locks = new Map<string, string>();

  async function load(vmId: string) {
    const vm = await db.vm.findUnique({ where: { id: vmId }, include: { image: true, cdromImage: true, ports: true } });
    if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}".`);
    return vm;
  }

  function stateOf(vm: { name: string; state: string }): State {
    if (!isState(vm.state)) throw new HangarError("DRIVER_FAILED", `VM "${vm.name}" has an unknown state "${vm.state}".`);
    return vm.state;
  }

  /** The ready condition of running VMs; the lifecycle starts and ends its watches. */
  const readiness = createReadiness({
    db,
    driverFor,
    ...readinessTimings,
    settled: async (vm, { state, detail }) => {
      const ok = state === "ready";
      await recorder.record({
        stream: "vm",
        vm,
        actor: "system",
        action: "ready",
        from: "Running",
        to: "Running",
        ok,
        message: ok ? `Ready: ${detail}` : `Not ready: ${detail}`,
      });
    },
  });

  /**
   * Moves the row from `from` to `to` only if it is still in `from`. Returns false when
   * another writer got there first.
   */
  async function compareAndSet(vmId: string, from: State, to: State, data: Record<string, unknown> = {}): Promise<boolean> {
    const result = await db.vm.updateMany({ where: { id: vmId, state: from }, data: { ...data, state: to } });
    return result.count === 1;
  }

  /**
   * Starts are admitted one at a time: the memory check and the compare-and-set into
   * Starting (which counts the VM's memory as taken) happen together, so two starts cannot
   * both take the last room. Every start of this host's VMs runs in this process.
   */
  let admitting: Promise<unknown> = Promise.resolve();
  function admitted<T>(work: () => Promise<T>): Promise<T> {
    const run = admitting.then(work, work);
    admitting = run.catch(() => undefined);
    return run;
  }

  /** Validates `action` from the VM's state and takes the row into the next state. */
  async function begin(vmId: string, action: Exclude<Action, "None">) {
    return action === "Start" && noRoom ? admitted(() => enter(vmId, action, noRoom)) : enter(vmId, action);
  }

  async function enter(vmId: string, action: Exclude<Action, "None">, room?: (memoryMiB: number) => Promise<string | undefined>) {
    const vm = await load(vmId);
    const self = await hostId();
    // The routers forward calls on other hosts' VMs there (server/cluster/): reaching this is a bug.
    if (vm.hostId && vm.hostId !== self) throw new Error(`VM ${vm.name} belongs to host ${vm.hostId}, not to this one (${self})`);
    const from = stateOf(vm);
    if (action === "Delete" && vm.protection) {
      throw new HangarError("VM_PROTECTED", `VM "${vm.name}" is protected from deletion; turn its protection off first.`);
    }
    const lock = locks.get(vmId);
    if (lock !== undefined) throw new HangarError("VM_BUSY", `VM "${vm.name}" is busy ${lock}; ${action.toLowerCase()} it once that is done.`);
    const next = transition(from, action);
    if (next === undefined) {
      if (isTransient(from)) {
        throw new HangarError("VM_BUSY", `VM "${vm.name}" is ${from}; wait until it settles, then try again.`);
      }
      const allowed = validActions(from).join(", ") || "none";
      throw new HangarError("VM_INVALID_TRANSITION", `Cannot ${action.toLowerCase()} VM "${vm.name}" while it is ${from}. Allowed now: ${allowed}.`);
    }
    const full = room && next !== from ? await room(vm.memoryMiB) : undefined;
    if (full) throw new HangarError("HOST_FULL", `VM "${vm.name}" cannot start: ${full}`);
    if (next !== from && !(await compareAndSet(vmId, from, next))) {
      const now = await db.vm.findUnique({ where: { id: vmId }, select: { state: true } });
      throw new HangarError("VM_BUSY", `Another request changed VM "${vm.name}" first (it is ${now?.state ?? "gone"} now); try again once it settles.`);
    }
    if (next !== from) void bus.publish({ vmId, vmName: vm.name, state: next, eventId: "" });
    // A start uses the CPUs and memory the VM has as it leaves Stopped: a resize
    // (vms/resources.ts) writes only while the VM is Stopped, so it came before or fails.
    return { vm: action === "Start" && next !== from ? await load(vmId) : vm, from, next };
  }

  /** Writes the final state of an action, its event, and publishes the change. */
  async function finish(
    vm: { id: string; name: string },
    actor: Actor,
    action: string,
    from: State,
    to: State,
    ok: boolean,
    message: string,
    data: Record<string, unknown> = {},
  ) {
    // Kept on the VM and in its events, read from every host.
    const kept = namingHost(message, hostName);
    await db.vm.update({ where: { id: vm.id }, data: { ...data, state: to, error: ok ? null : kept } });
    await recorder.record({ stream: "vm", vm, actor, action, from, to, ok, message: kept });
  }

  async function setGuestClock(vm: { id: string; name: string }, driver: Manager): Promise<void> {
    const set = await driver.syncGuestClock().catch(() => false);
    await recorder
      .record({
        stream: "vm",
        vm,
        actor: "system",
        action: "clock",
        ok: set,
        message: set
          ? "Guest clock set to the host's through the guest agent"
          : "No guest agent answered: the guest's clock is behind by the time it was suspended until it syncs itself (NTP)",
      })
      .catch(() => undefined);
  }

  async function guarded<T>(vmId: string, work: () => Promise<T>): Promise<T> {
    inFlight.set(vmId, (inFlight.get(vmId) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (inFlight.get(vmId) ?? 1) - 1;
      if (left > 0) inFlight.set(vmId, left);
      else inFlight.delete(vmId);
    }
  }

  /**
   * Runs `work` with VM `vmId` locked, `doing` saying what for ("taking snapshot s1"): every
   * lifecycle action on it is refused with VM_BUSY meanwhile. The VM must be in one of
   * `states`, with nothing else under way on it (VM_BUSY otherwise).
   */
  async function withLock<T>(vmId: string, doing: string, states: readonly State[], work: () => Promise<T>): Promise<T> {
    const vm = await load(vmId);
    // Checked and taken with no await between: of two callers, the second sees the first's lock.
    const held = locks.get(vmId);
    if (held !== undefined) throw new HangarError("VM_BUSY", `VM "${vm.name}" is busy ${held}; try again once that is done.`);
    if (inFlight.has(vmId)) throw new HangarError("VM_BUSY", `VM "${vm.name}" has an action under way; try again once it settles.`);
    const state = stateOf(vm);
    if (!states.includes(state)) {
      throw new HangarError(isTransient(state) ? "VM_BUSY" : "VM_INVALID_TRANSITION", `VM "${vm.name}" is ${state}; ${doing} needs it ${states.join(" or ")}.`);
    }
    locks.set(vmId, doing);
    try {
      return await guarded(vmId, work);
    } finally {
      locks.delete(vmId);
    }
  }

  /**
   * Clone: [Initial, Deleted] -> Cloning -> Stopped; on error -> Initial with the error.
   * Makes the VM's disk (an overlay on its image) and its SSH key.
   */
  async function cloneVm(vmId: string, actor: Actor): Promise<void> {
    await guarded(vmId, async () => {
      const { vm, from } = await begin(vmId, "Clone");
      if (vm.image.status !== "ready") {
        await finish(vm, actor, "clone", from, "Initial", false, `Image "${vm.image.name}" is ${vm.image.status}, not ready.`);
        throw new HangarError("IMAGE_NOT_READY", `Image "${vm.image.name}" is ${vm.image.status}; wait for it to be ready.`);
      }
      const driver = driverFor(vmId);
      const source = cloneSource(vm.cloneInfo);
      try {
        // The source may not start or change meanwhile: its disk is being copied.
        if (source) await withLock(source.sourceVmId, `copying its disk to VM ${vm.name}`, ["Stopped"], () => driver.cloneFrom(source.sourceVmId));
        else await driver.create((await localImage(vm.image)).path, vm.image.format, vm.diskGiB ? vm.diskGiB * GIB : undefined);
      } catch (error) {
        await driver.delete().catch(() => undefined);
        await finish(vm, actor, "clone", from, "Initial", false, `Clone failed: ${userMessage(error)}`);
        throw new HangarError(isHangarError(error) ? error.code : "DRIVER_FAILED", `Creating the disk of VM "${vm.name}" failed: ${userMessage(error)}`, {
          cause: error,
        });
      }
      const made = source ? `Disk copied from VM ${source.sourceName}` : `Disk created on image ${vm.image.name}`;
      await finish(vm, actor, "clone", from, "Stopped", true, made);
    });
  }

  /**
   * Start: [Stopped, Suspended] -> Starting -> Running; on error -> Stopped (nothing runs)
   * or ErrorUnknown (something may run), with the error on the VM. A Suspended VM resumes
   * from its saved state, on the machine type it was suspended with; a saved state that
   * does not load is dropped and the VM is left Stopped with the reason.
   */
  /** A member of a pool that stages Suspended, not yet handed out: its memory goes in a file. */
  async function waitsSuspendedInPool(vm: { poolId: string | null; acquiredAt: Date | null }): Promise<boolean> {
    if (!vm.poolId || vm.acquiredAt) return false;
    const pool = await db.pool.findUnique({ where: { id: vm.poolId }, select: { staging: true } });
    return pool?.staging === "Suspended";
  }

  async function startVm(vmId: string, actor: Actor): Promise<void> {
    await guarded(vmId, async () => {
      const { vm, from } = await begin(vmId, "Start");
      const resume = from === "Suspended";
      const driver = driverFor(vmId);
      try {
        const identity = await driver.identity();
        const image = await localImage(vm.image);
        const result = await driver.start({
          userData: vm.userData ?? "",
          cpus: vm.cpus,
          memoryMiB: vm.memoryMiB,
          sshAuthorizedKey: identity.publicKey,
          userAuthorizedKeys: resume ? [] : await authorizedKeysOf(db, vm.ownerId),
          monitor: true,
          boot: image.kernel ? { kernel: image.kernel, initrd: image.initrd ?? undefined, cmdline: vm.image.cmdline ?? undefined } : undefined,
          firmware: firmwareOf(vm.image.firmware),
          ports: vm.ports.map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort, preferred: p.boundPort ?? undefined })),
          sshHostPort: 0,
          sshPreferredPort: vm.sshPort ?? undefined,
          network: networkOf(vm),
          hostname: vm.name,
          instanceId: vm.id,
          resume,
          machine: resume ? (vm.machine ?? undefined) : undefined,
          cdrom: vm.cdromImage ? (await localImage(vm.cdromImage)).path : undefined,
          memoryFile: await waitsSuspendedInPool(vm),
        });
        for (const port of vm.ports) {
          await db.portForward.update({ where: { id: port.id }, data: { boundPort: result.ports.get(port.guestPort) ?? null } });
        }
        const how = resume ? "Resumed" : "Running";
        // A resumed guest carries on the boot it was suspended in: cloud-init does not run
        // again, so a condition that had settled stays; a fresh boot starts over.
        const keepsReadiness = resume && isSettled(vm.readyState);
        await finish(vm, actor, "start", from, "Running", true, `${how} as pid ${result.pid}, SSH on port ${result.sshPort}`, {
          pid: result.pid,
          sshPort: result.sshPort,
          machine: result.machine,
          ...(keepsReadiness ? {} : BOOTING),
        });
        if (!keepsReadiness) readiness.watch(vmId, result.pid);
        // A resumed guest's clock is behind by the time it was suspended. Its agent, where
        // the image has one, sets it; this must not hold up the resume itself.
        if (resume) void setGuestClock(vm, driver);
      } catch (error) {
        if (error instanceof AlreadyRunningError) {
          const pid = await driver.pid().catch(() => 0);
          await finish(vm, actor, "start", from, "Running", true, "qemu was already running; adopted it", { ...BOOTING, ...(pid ? { pid } : {}) });
          if (pid) readiness.watch(vmId, pid);
          return;
        }
        const stillRuns = await driver.running().catch(() => true);
        // A resume that failed for any reason but qemu refusing the saved state (qemu killed,
        // out of memory) keeps that state: the next start resumes it.
        const keepsSaved =
          resume && !stillRuns && !(error instanceof SavedStateLoadError) && (await driver.suspendedStateSavedAt().catch(() => undefined)) !== undefined;
        const to: State = stillRuns ? "ErrorUnknown" : keepsSaved ? "Suspended" : "Stopped";
        // Only a VM created before create checked its user-data gets here: it keeps that user-data.
        const reason =
          error instanceof UserDataError
            ? `${error.message} A VM keeps the user-data it was created with; create one with user-data cloud-init can read.`
            : error instanceof NotRunningError && !stillRuns && !resume
              ? `${userMessage(error)}, so the VM is stopped; start it again.`
              : userMessage(error);
        let message = `Start failed: ${reason}`;
        if (keepsSaved) message = `${message.replace(/[^.]$/, "$&.")} The saved state is kept; start the VM again to resume it.`;
        else if (resume && !stillRuns) {
          await driver.discardSuspendedState().catch(() => undefined);
          // Not refused and no longer in the disk: qemu loaded it and dropped it, then ended (killed) with the guest resumed.
          message =
            error instanceof SavedStateLoadError
              ? `The saved state did not load, so it was dropped; start the VM again to boot it. ${message}`
              : `qemu ended after the guest had resumed from its saved state, so what was in its memory is lost; start the VM again to boot it. ${message}`;
        }
        // Suspended again, it keeps what its boot had reached, as after a suspend.
        await finish(vm, actor, "start", from, to, false, message, { pid: null, ...(keepsSaved ? {} : NOT_RUNNING) });
        // An image no host could send is the caller's to wait for, not a driver failure.
        const code =
          error instanceof HostToolMissingError
            ? "HOST_TOOL_MISSING"
            : error instanceof HostPortTakenError
              ? "PORT_IN_USE"
              : error instanceof UserDataError
                ? "INVALID_INPUT"
                : // Someone ended its qemu as it started: not the host's failure, as with a suspend cut short.
                  error instanceof NotRunningError && !stillRuns
                  ? "NOT_RUNNING"
                  : isHangarError(error)
                    ? error.code
                    : "DRIVER_FAILED";
        const answer = `Starting VM "${vm.name}" failed: ${reason}`;
        throw new HangarError(code, keepsSaved ? `${answer.replace(/[^.]$/, "$&.")} Its saved state is kept; start it again to resume it.` : answer, {
          cause: error,
        });
      }
    });
  }

  /**
   * Stop: [Running] -> Stopping -> Stopped; [Stopped] -> Stopped. An ACPI power button
   * press, `timeoutMs` for the guest, then forced. On error -> Stopped or ErrorUnknown.
   */
  async function stopVm(vmId: string, timeoutMs: number, actor: Actor): Promise<void> {
    await guarded(vmId, async () => {
      const { vm, from, next } = await begin(vmId, "Stop");
      if (next === from) return;
      const driver = driverFor(vmId);
      readiness.forget(vmId);
      try {
        const outcome = await driver.stop(timeoutMs);
        await finish(vm, actor, "stop", from, "Stopped", true, describeStop(outcome, timeoutMs), { pid: null, ...NOT_RUNNING });
      } catch (error) {
        if (error instanceof NotRunningError) {
          await finish(vm, actor, "stop", from, "Stopped", true, "qemu was not running", { pid: null, ...NOT_RUNNING });
          return;
        }
        const stillRuns = await driver.running().catch(() => true);
        const to: State = stillRuns ? "ErrorUnknown" : "Stopped";
        await finish(vm, actor, "stop", from, to, false, `Stop failed: ${userMessage(error)}`, stillRuns ? {} : { pid: null, ...NOT_RUNNING });
        throw new HangarError("DRIVER_FAILED", `Stopping VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
      }
    });
  }

  /**
   * Delete: [Initial, Stopped, Suspended, ErrorUnknown] -> Deleting -> Deleted, then the row
   * goes (its events stay, naming it). A qemu still alive in ErrorUnknown is killed first.
   * On error -> ErrorUnknown.
   */
  async function deleteVm(vmId: string, actor: Actor): Promise<void> {
    await guarded(vmId, async () => {
      const { vm, from } = await begin(vmId, "Delete");
      readiness.forget(vmId);
      const driver = driverFor(vmId);
      try {
        await driver.kill();
        await driver.delete();
      } catch (error) {
        await finish(vm, actor, "delete", from, "ErrorUnknown", false, `Delete failed: ${userMessage(error)}`);
        throw new HangarError("DRIVER_FAILED", `Deleting VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
      }
      await db.vm.update({ where: { id: vmId }, data: { state: "Deleted", pid: null } });
      await recorder.record({ stream: "vm", vm: { id: vmId, name: vm.name }, actor, action: "delete", from, to: "Deleted", ok: true, message: "Deleted" });
      await db.vm.delete({ where: { id: vmId } });
      void bus.publish({ vmId, vmName: vm.name, state: "Gone", eventId: "" });
    });
  }

  /**
   * Suspend: [Running] -> Suspending -> Suspended; [Suspended] -> Suspended. The whole state
   * goes into the VM's disk and qemu ends (memory freed; it survives a server restart).
   * On error -> ErrorUnknown (the reconciler adopts a qemu that kept running).
   */
  async function suspendVm(vmId: string, actor: Actor): Promise<void> {
    await guarded(vmId, async () => {
      const { vm, from, next } = await begin(vmId, "Suspend");
      if (next === from) return;
      const driver = driverFor(vmId);
      readiness.forget(vmId);
      const started = Date.now();
      try {
        await driver.suspend();
      } catch (error) {
        // qemu gone (killed, crashed) settles it: saved whole before it went, or stopped.
        if (!(await driver.running().catch(() => true))) {
          const savedAt = await driver.suspendedStateSavedAt().catch(() => undefined);
          if (savedAt && savedAt.getTime() >= started - 1000) {
            await finish(vm, actor, "suspend", from, "Suspended", true, `State saved in ${Date.now() - started} ms (qemu then ended before it was told to)`, {
              pid: null,
            });
            return;
          }
          const message = `Suspend failed: qemu ended during the save (${userMessage(error)}); the VM is stopped, and what was in its memory is lost.`;
          await finish(vm, actor, "suspend", from, "Stopped", false, message, { pid: null, ...NOT_RUNNING });
          // Not the host's failure: someone or something ended the VM's qemu, as with exec.
          throw new HangarError(
            "NOT_RUNNING",
            `VM "${vm.name}" stopped during the suspend (its qemu ended), so what was in its memory is lost; start it to boot it again.`,
            { cause: error },
          );
        }
        await finish(vm, actor, "suspend", from, "ErrorUnknown", false, `Suspend failed: ${userMessage(error)}`);
        throw new HangarError("DRIVER_FAILED", `Suspending VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
      }
      await finish(vm, actor, "suspend", from, "Suspended", true, `State saved in ${Date.now() - started} ms`, { pid: null });
    });
  }

  /**
   * What the reconciler saw: moves the row from `from` to `to` (only if still in `from` and
   * no action of this process holds it) with an event saying why. `error`, when given, goes
   * on the VM (and the event is not ok); without it the VM's error is cleared. Returns
   * whether it moved.
   */
  async function observe(vmId: string, from: State, to: State, note: Note, data: Record<string, unknown> = {}): Promise<boolean> {
    if (inFlight.has(vmId)) return false;
    const vm = await db.vm.findUnique({ where: { id: vmId }, select: { id: true, name: true } });
    return vm ? settle(vm, from, to, note, data) : false;
  }

  /**
   * Compare-and-set from a transient state, with the reconciler's event. A VM that stops
   * running is no longer ready (a suspended one keeps what its boot reached, as a suspend
   * does); a qemu adopted as Running has its boot watched again.
   */
  async function settle(vm: { id: string; name: string }, from: State, to: State, note: Note, data: Record<string, unknown> = {}): Promise<boolean> {
    const ready = to === "Stopped" || to === "ErrorUnknown" || to === "Initial" ? NOT_RUNNING : {};
    if (!(await compareAndSet(vm.id, from, to, { ...data, ...ready, error: note.error ?? null }))) return false;
    if (to === "Running" && typeof data.pid === "number") readiness.watch(vm.id, data.pid);
    else if (to !== "Running") readiness.forget(vm.id);
    await recorder.record({ stream: "vm", vm, actor: RECONCILER, action: "reconcile", from, to, ok: note.error === undefined, message: note.message });
    return true;
  }

  /**
   * Takes over a VM that a crash left in the transient state `from`: holds it in the
   * in-flight set (so nothing else of this process acts on it) while `work` runs, and does
   * nothing when another action holds it or it has left `from`.
   */
  async function takeOver(
    vmId: string,
    from: State,
    work: (vm: { id: string; name: string; updatedAt: Date }) => Promise<State | undefined>,
  ): Promise<State | undefined> {
    if (inFlight.has(vmId)) return undefined;
    return guarded(vmId, async () => {
      const vm = await db.vm.findUnique({ where: { id: vmId }, select: { id: true, name: true, state: true, updatedAt: true } });
      if (!vm || vm.state !== from) return undefined;
      return work(vm);
    });
  }

  /** After a driver call failed: ErrorUnknown when something may still run, else `quiet`. */
  async function settleFailure(vm: { id: string; name: string }, from: State, quiet: State, what: string, error: unknown): Promise<State | undefined> {
    const stillRuns = await driverFor(vm.id)
      .running()
      .catch(() => true);
    const to = stillRuns ? "ErrorUnknown" : quiet;
    const message = `${what} failed: ${userMessage(error)}`;
    return (await settle(vm, from, to, { message, error: message }, stillRuns ? {} : { pid: null })) ? to : undefined;
  }

  /**
   * Reconciler: carries out a stop a crash interrupted. [Stopping] -> Stopped: a qemu that
   * still runs gets the ACPI power button, `timeoutMs`, then is forced. Returns the state
   * reached, or undefined when the VM was not (or no longer) in Stopping.
   */
  async function resumeStop(vmId: string, timeoutMs: number): Promise<State | undefined> {
    return takeOver(vmId, "Stopping", async (vm) => {
      const driver = driverFor(vmId);
      let message: string;
      try {
        const outcome = await driver.stop(timeoutMs);
        message = `A stop interrupted by a restart was carried out: qemu still ran, so it was stopped (${describeStop(outcome, timeoutMs)})`;
      } catch (error) {
        if (!(error instanceof NotRunningError)) return settleFailure(vm, "Stopping", "Stopped", "Carrying out an interrupted stop", error);
        message = "A stop interrupted by a restart was carried out: qemu had already exited";
      }
      return (await settle(vm, "Stopping", "Stopped", { message }, { pid: null })) ? "Stopped" : undefined;
    });
  }

  /**
   * Reconciler: carries out or rolls back a suspend a crash interrupted. [Suspending] ->
   * Suspended when the state the suspend saved is complete in the disk (a qemu still alive
   * is ended); -> Running when qemu is alive without it (the guest continues); -> Stopped
   * when qemu is gone without it (the guest's memory is lost).
   */
  async function resumeSuspend(vmId: string): Promise<State | undefined> {
    return takeOver(vmId, "Suspending", async (vm) => {
      const driver = driverFor(vmId);
      // The row moved to Suspending just before the save began: an older saved state is not this one's.
      const since = vm.updatedAt;
      try {
        if (await driver.running()) {
          if ((await driver.settleSuspend(since)) === "suspended") {
            const message = "A suspend interrupted by a restart was carried out: its saved state was complete, so qemu was ended";
            return (await settle(vm, "Suspending", "Suspended", { message }, { pid: null })) ? "Suspended" : undefined;
          }
          const pid = await driver.pid();
          const ssh = (await driver.forwards().catch(() => [])).find((f) => f.guestPort === 22);
          const message = "A suspend interrupted by a restart was rolled back: its state was not saved, so the guest runs on";
          const error = "The suspend was interrupted by a restart of Hangar and rolled back; the VM runs on. Suspend it again.";
          return (await settle(vm, "Suspending", "Running", { message, error }, { pid, sshPort: ssh?.hostPort ?? null })) ? "Running" : undefined;
        }
        const savedAt = await driver.suspendedStateSavedAt();
        if (savedAt && savedAt >= since) {
          const message = "A suspend interrupted by a restart was carried out: qemu had ended after saving the state";
          return (await settle(vm, "Suspending", "Suspended", { message }, { pid: null })) ? "Suspended" : undefined;
        }
        const message = "A suspend interrupted by a restart was rolled back: qemu ended before the state was saved, so the VM is stopped";
        const error = "The suspend was interrupted by a restart of Hangar before the state was saved; the VM is stopped and its memory is lost.";
        return (await settle(vm, "Suspending", "Stopped", { message, error }, { pid: null })) ? "Stopped" : undefined;
      } catch (error) {
        return settleFailure(vm, "Suspending", "Stopped", "Settling an interrupted suspend", error);
      }
    });
  }

  /**
   * Reconciler: settles a start a crash interrupted. [Starting] -> Running when qemu runs: a
   * resume is completed first (the saved state loaded if it was not yet, the guest carried on,
   * the state dropped from the disk; continuing before the load would boot the guest afresh
   * over its saved memory), then the port forwards qemu bound are recorded and, after a
   * resume, the guest's clock set. -> Suspended when no qemu runs and the saved state is still
   * in the disk (the next start resumes it); -> Stopped otherwise, or when qemu refuses the state.
   */
  async function resumeStart(vmId: string): Promise<State | undefined> {
    return takeOver(vmId, "Starting", async (vm) => {
      const driver = driverFor(vmId);
      try {
        const saved = (await driver.suspendedStateSavedAt()) !== undefined;
        if (!(await driver.running())) {
          if (saved) {
            const message = "A resume interrupted by a restart was rolled back: no qemu runs, and the saved state is kept";
            const error = "The resume was interrupted by a restart of Hangar; start the VM again to resume it.";
            return (await settle(vm, "Starting", "Suspended", { message, error }, { pid: null })) ? "Suspended" : undefined;
          }
          const message = "A start interrupted by a restart was rolled back: no qemu runs";
          const error = "The start was interrupted by a restart of Hangar; start the VM again.";
          return (await settle(vm, "Starting", "Stopped", { message, error }, { pid: null })) ? "Stopped" : undefined;
        }
        // A qemu left paused (a resume before its load or its cont) carries on; a boot runs on.
        await driver.finishResume();
        const forwards = await driver.forwards();
        for (const forward of forwards) {
          await db.portForward.updateMany({ where: { vmId, guestPort: forward.guestPort }, data: { boundPort: forward.hostPort } });
        }
        const message = saved
          ? "A resume interrupted by a restart was completed: qemu runs, so the saved state was loaded and the guest carried on"
          : "A start interrupted by a restart was carried out: qemu runs, so it was adopted";
        const data = { pid: await driver.pid(), sshPort: forwards.find((f) => f.guestPort === 22)?.hostPort ?? null };
        if (!(await settle(vm, "Starting", "Running", { message }, data))) return undefined;
        if (saved) void setGuestClock(vm, driver);
        return "Running";
      } catch (error) {
        if (!(error instanceof SavedStateLoadError)) return settleFailure(vm, "Starting", "Stopped", "Settling an interrupted start", error);
        await driver.kill().catch(() => undefined);
        await driver.discardSuspendedState().catch(() => undefined);
        const message = `A resume interrupted by a restart could not be completed: ${error.message}; it was dropped, start the VM again to boot it`;
        return (await settle(vm, "Starting", "Stopped", { message, error: message }, { pid: null })) ? "Stopped" : undefined;
      }
    });
  }

  /** Reconciler: rolls back a clone a crash interrupted. [Cloning] -> Initial, the half-made disk removed. */
  async function undoClone(vmId: string): Promise<State | undefined> {
    return takeOver(vmId, "Cloning", async (vm) => {
      const driver = driverFor(vmId);
      try {
        await driver.kill();
        await driver.delete();
      } catch (error) {
        return settleFailure(vm, "Cloning", "ErrorUnknown", "Removing the disk of an interrupted clone", error);
      }
      const message = "A clone interrupted by a restart was rolled back: the half-made disk was removed";
      const error = "The clone was interrupted by a restart of Hangar; delete the VM and create it again.";
      return (await settle(vm, "Cloning", "Initial", { message, error }, { pid: null })) ? "Initial" : undefined;
    });
  }

  /**
   * Reconciler: carries out a delete a crash interrupted. [Deleting] -> Deleted, then the row
   * goes (its events stay). A row a crash left Deleted (its files gone, the row not yet) goes
   * too: no action leaves Deleted but Clone, so it would stay listed and hold its name.
   */
  async function resumeDelete(vmId: string, from: "Deleting" | "Deleted" = "Deleting"): Promise<State | undefined> {
    return takeOver(vmId, from, async (vm) => {
      const driver = driverFor(vmId);
      try {
        await driver.kill();
        await driver.delete();
      } catch (error) {
        return settleFailure(vm, from, "ErrorUnknown", "Carrying out an interrupted delete", error);
      }
      const message = "A delete interrupted by a restart was carried out";
      if (!(await settle(vm, from, "Deleted", { message }, { pid: null }))) return undefined;
      await db.vm.delete({ where: { id: vmId } });
      void bus.publish({ vmId, vmName: vm.name, state: "Gone", eventId: "" });
      return "Deleted";
    });
  }

  /**
   * Restart (Proxmox's Reboot, `incus restart`): Stop, then Start, each its own transition
   * and event, so the state machine stays the seed's. Only a Running VM restarts.
   */
  async function restartVm(vmId: string, timeoutMs: number, actor: Actor): Promise<void> {
    // Held for the whole restart: the reconciler must not start the VM between its stop and start.
    await guarded(vmId, async () => {
      const vm = await load(vmId);
      if (vm.state !== "Running") throw new HangarError("NOT_RUNNING", `VM "${vm.name}" is ${vm.state}; only a running VM restarts (start it instead).`);
      // Written before the stop: if Hangar ends in between, its next start completes the restart.
      await db.vm.update({ where: { id: vmId }, data: { restartPending: true } });
      try {
        await stopVm(vmId, timeoutMs, actor);
        await startVm(vmId, actor);
      } finally {
        await db.vm.updateMany({ where: { id: vmId }, data: { restartPending: false } });
      }
    });
  }

  /**
   * Reconciler: completes a restart a crash interrupted, once its stop is done (the row is
   * Stopped; an interrupted Stopping or Starting is settled first by the usual rules). In any
   * other resting state the restart either finished or never began its stop: the mark goes.
   */
  async function resumeRestart(vmId: string): Promise<State | undefined> {
    if (inFlight.has(vmId)) return undefined;
    const vm = await db.vm.findUnique({ where: { id: vmId }, select: { id: true, name: true, state: true, restartPending: true } });
    if (!vm?.restartPending || !isState(vm.state) || isTransient(vm.state)) return undefined;
    if (vm.state !== "Stopped") {
      await db.vm.updateMany({ where: { id: vmId, restartPending: true }, data: { restartPending: false } });
      return undefined;
    }
    let failure: string | undefined;
    try {
      await startVm(vmId, "system");
    } catch (error) {
      failure = userMessage(error);
    }
    await db.vm.updateMany({ where: { id: vmId }, data: { restartPending: false } });
    await recorder.record({
      stream: "vm",
      vm,
      actor: "system",
      action: "restart",
      ok: failure === undefined,
      message:
        failure === undefined
          ? "A restart interrupted by a restart of Hangar was completed: its stop was done, so the VM was started again"
          : `A restart interrupted by a restart of Hangar could not be completed: ${failure}`,
    });
    return failure === undefined ? "Running" : undefined;
  }

  /**
   * Reconciler: completes a pool release a crash interrupted (pool.ts marks the row before its
   * stop), once whatever it was in the middle of has settled: the caller asked for the VM to
   * go, so it is stopped at once, as a pool's members are, and deleted. A protected VM is
   * kept: the release refuses those before its mark, so only a protection turned on since has it.
   */
  async function resumeRelease(vmId: string): Promise<State | undefined> {
    if (inFlight.has(vmId)) return undefined;
    const vm = await db.vm.findUnique({
      where: { id: vmId },
      select: { id: true, name: true, state: true, releasePending: true, protection: true, pool: { select: { name: true } } },
    });
    if (!vm?.releasePending || !isState(vm.state) || isTransient(vm.state)) return undefined;
    if (vm.protection) {
      await db.vm.updateMany({ where: { id: vmId }, data: { releasePending: false } });
      return undefined;
    }
    try {
      if (vm.state === "Running") await stopVm(vmId, 0, "system");
      await deleteVm(vmId, "system");
    } catch (error) {
      await db.vm.updateMany({ where: { id: vmId }, data: { releasePending: false } });
      await recorder.record({
        stream: "vm",
        vm,
        actor: "system",
        action: "pool-released",
        ok: false,
        message: `A release interrupted by a restart of Hangar could not be completed: ${userMessage(error)}; delete the VM instead.`,
      });
      return undefined;
    }
    await recorder.record({
      stream: "vm",
      vm: { id: null, name: vm.name },
      actor: "system",
      action: "pool-released",
      ok: true,
      message: `Pool ${vm.pool?.name ?? "(deleted)"}: ${vm.name} released (a release interrupted by a restart of Hangar was completed)`,
    });
    return "Deleted";
  }

  function instance(vmId: string, actor: Actor): Instance {
    return {
      id: () => vmId,
      clone: () => cloneVm(vmId, actor),
      start: () => startVm(vmId, actor),
      stop: async (timeoutMs) => {
        try {
          await stopVm(vmId, timeoutMs, actor);
          return [undefined, undefined];
        } catch (error) {
          return [undefined, error instanceof Error ? error : new Error(String(error))];
        }
      },
      suspendable: () => true,
      suspend: () => suspendVm(vmId, actor),
      delete: () => deleteVm(vmId, actor),
      state: async () => {
        const vm = await db.vm.findUnique({ where: { id: vmId }, select: { state: true } });
        if (!vm) return "Deleted";
        return isState(vm.state) ? vm.state : "ErrorUnknown";
      },
      exec: async (command, ...args) => {
        const vm = await load(vmId);
        if (vm.state !== "Running" || !vm.sshPort) throw new HangarError("NOT_RUNNING", `VM "${vm.name}" is not running.`);
        const driver = driverFor(vmId);
        const { privateKeyFile } = await driver.identity();
        return driver.shell([command, ...args], vm.sshPort, privateKeyFile, { user: vm.image.loginUser });
      },
      properties: async () => {
        const vm = await load(vmId);
        const cloneInfo: unknown = vm.cloneInfo ? JSON.parse(vm.cloneInfo) : null;
        return { ip: GUEST_IP, cloneInfo, sshPort: vm.sshPort };
      },
    };
  }

  return {
    cloneVm,
    startVm,
    stopVm,
    restartVm,
    deleteVm,
    suspendVm,
    observe,
    resumeStart,
    resumeStop,
    resumeSuspend,
    resumeRestart,
    resumeRelease,
    undoClone,
    resumeDelete,
    instance,
    isBusy: (vmId: string) => inFlight.has(vmId),
    /** Holds VM `vmId` busy while `work` runs several actions (a pool release): the reconciler leaves it alone meanwhile. */
    hold: guarded,
    withLock,
    hostId,
    /** Waits for the running VM's ready condition to settle (readiness.ts). */
    waitForReady: readiness.waitForReady,
    /** Watches the boot of a running VM until its ready condition settles (a previous process was watching it). */
    watchReadiness: readiness.watch,
    /** Ends the readiness watches (process shutdown). */
    close: readiness.close,
  };
}

/** The image's firmware column; anything unknown boots as BIOS, the column's default. */
function firmwareOf(value: string): Firmware {
  return FIRMWARES.find((f) => f === value) ?? "bios";
}
