/**
 * Applying an action to a VM: compare-and-set the state row (UPDATE … WHERE state =
 * expected, so of two concurrent starts exactly one wins), call the driver, write the final
 * state and an Event, publish the change. The only writer of Vm.state: routers, the pool
 * and the reconciler all come through here.
 */
import type { Db } from "../db.ts";
import { AlreadyRunningError, FIRMWARES, HostToolMissingError, NotRunningError, type Firmware, type Manager } from "../driver/manager.ts";
import { HangarError, errorMessage } from "../errors.ts";
import type { VmBus } from "./bus.ts";
import { isState, isTransient, transition, validActions, type Action, type State } from "./state.ts";

/** Who asked: a user, a token, "system" or "reconciler". */
export type Actor = string;

export interface LifecycleDeps {
  db: Db;
  bus: VmBus;
  /** The driver's Manager for one VM. */
  driverFor: (vmId: string) => Manager;
  /** This host's id: actions on a VM of another host are refused. */
  hostId: () => Promise<string>;
}

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

/** What Vm.cloneInfo records for a VM cloned from another. */
export interface CloneInfo {
  sourceVmId: string;
  sourceName: string;
}

function cloneSource(cloneInfo: string | null): CloneInfo | undefined {
  if (!cloneInfo) return undefined;
  const parsed = JSON.parse(cloneInfo) as Partial<CloneInfo>;
  return parsed.sourceVmId && parsed.sourceName ? { sourceVmId: parsed.sourceVmId, sourceName: parsed.sourceName } : undefined;
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

export function createLifecycle({ db, bus, driverFor, hostId }: LifecycleDeps) {
  /** VMs with an action under way in this process; the reconciler leaves them alone. */
  const inFlight = new Set<string>();

  async function load(vmId: string) {
    const vm = await db.vm.findUnique({ where: { id: vmId }, include: { image: true, ports: true } });
    if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}".`);
    return vm;
  }

  function stateOf(vm: { name: string; state: string }): State {
    if (!isState(vm.state)) throw new HangarError("DRIVER_FAILED", `VM "${vm.name}" has an unknown state "${vm.state}".`);
    return vm.state;
  }

  async function record(
    vmId: string | null,
    vmName: string,
    actor: Actor,
    action: string,
    from: State | null,
    to: State | "Gone" | null,
    ok: boolean,
    message: string,
    extra: { target?: string; userId?: string } = {},
  ) {
    const event = await db.event.create({
      data: { vmId, vmName, actor, action, fromState: from, toState: to, ok, message, ...extra },
    });
    if (to) bus.publish({ vmId: vmId ?? "", vmName, state: to, eventId: event.id });
    return event;
  }

  /**
   * Moves the row from `from` to `to` only if it is still in `from`. Returns false when
   * another writer got there first.
   */
  async function compareAndSet(vmId: string, from: State, to: State, data: Record<string, unknown> = {}): Promise<boolean> {
    const result = await db.vm.updateMany({ where: { id: vmId, state: from }, data: { ...data, state: to } });
    return result.count === 1;
  }

  /** Validates `action` from the VM's state and takes the row into the next state. */
  async function begin(vmId: string, action: Exclude<Action, "None">) {
    const vm = await load(vmId);
    const self = await hostId();
    if (vm.hostId && vm.hostId !== self) {
      const host = await db.host.findUnique({ where: { id: vm.hostId }, select: { name: true } });
      throw new HangarError("HOST_MISMATCH", `VM "${vm.name}" runs on host ${host?.name ?? vm.hostId}; use that host's Hangar for it.`);
    }
    const from = stateOf(vm);
    const next = transition(from, action);
    if (next === undefined) {
      if (isTransient(from)) {
        throw new HangarError("VM_BUSY", `VM "${vm.name}" is ${from}; wait until it settles, then try again.`);
      }
      const allowed = validActions(from).join(", ") || "none";
      throw new HangarError(
        "VM_INVALID_TRANSITION",
        `Cannot ${action.toLowerCase()} VM "${vm.name}" while it is ${from}. Allowed now: ${allowed}.`,
      );
    }
    if (next !== from && !(await compareAndSet(vmId, from, next))) {
      const now = await db.vm.findUnique({ where: { id: vmId }, select: { state: true } });
      throw new HangarError(
        "VM_BUSY",
        `Another request changed VM "${vm.name}" first (it is ${now?.state ?? "gone"} now); try again once it settles.`,
      );
    }
    if (next !== from) bus.publish({ vmId, vmName: vm.name, state: next, eventId: "" });
    return { vm, from, next };
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
    await db.vm.update({ where: { id: vm.id }, data: { ...data, state: to, error: ok ? null : message } });
    await record(vm.id, vm.name, actor, action, from, to, ok, message);
  }

  async function guarded<T>(vmId: string, work: () => Promise<T>): Promise<T> {
    inFlight.add(vmId);
    try {
      return await work();
    } finally {
      inFlight.delete(vmId);
    }
  }

  /**
   * Clone: [Initial, Deleted] -> Cloning -> Stopped; on error -> Initial with the error.
   * Makes the VM's disk (an overlay on its image) and its SSH key.
   */
  async function cloneVm(vmId: string, actor: Actor): Promise<void> {
    const { vm, from } = await begin(vmId, "Clone");
    await guarded(vmId, async () => {
      if (vm.image.status !== "ready") {
        await finish(vm, actor, "clone", from, "Initial", false, `Image "${vm.image.name}" is ${vm.image.status}, not ready.`);
        throw new HangarError("IMAGE_NOT_READY", `Image "${vm.image.name}" is ${vm.image.status}; wait for it to be ready.`);
      }
      const driver = driverFor(vmId);
      const source = cloneSource(vm.cloneInfo);
      try {
        if (source) await driver.cloneFrom(source.sourceVmId);
        else await driver.create(vm.image.path, vm.image.format);
      } catch (error) {
        await driver.delete().catch(() => undefined);
        await finish(vm, actor, "clone", from, "Initial", false, `Clone failed: ${errorMessage(error)}`);
        throw new HangarError("DRIVER_FAILED", `Creating the disk of VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
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
  async function startVm(vmId: string, actor: Actor): Promise<void> {
    const { vm, from } = await begin(vmId, "Start");
    const resume = from === "Suspended";
    await guarded(vmId, async () => {
      const driver = driverFor(vmId);
      try {
        const identity = await driver.identity();
        const result = await driver.start({
          userData: vm.userData ?? "",
          cpus: vm.cpus,
          memoryMiB: vm.memoryMiB,
          sshAuthorizedKey: identity.publicKey,
          monitor: true,
          boot: vm.image.kernel
            ? { kernel: vm.image.kernel, initrd: vm.image.initrd ?? undefined, cmdline: vm.image.cmdline ?? undefined }
            : undefined,
          firmware: firmwareOf(vm.image.firmware),
          ports: vm.ports.map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort })),
          sshHostPort: 0,
          hostname: vm.name,
          instanceId: vm.id,
          resume,
          machine: resume ? (vm.machine ?? undefined) : undefined,
        });
        for (const port of vm.ports) {
          await db.portForward.update({ where: { id: port.id }, data: { boundPort: result.ports.get(port.guestPort) ?? null } });
        }
        const how = resume ? "Resumed" : "Running";
        await finish(vm, actor, "start", from, "Running", true, `${how} as pid ${result.pid}, SSH on port ${result.sshPort}`, {
          pid: result.pid,
          sshPort: result.sshPort,
          machine: result.machine,
        });
      } catch (error) {
        if (error instanceof AlreadyRunningError) {
          await finish(vm, actor, "start", from, "Running", true, "qemu was already running; adopted it");
          return;
        }
        const stillRuns = await driver.running().catch(() => true);
        const to: State = stillRuns ? "ErrorUnknown" : "Stopped";
        let message = `Start failed: ${errorMessage(error)}`;
        if (resume && !stillRuns) {
          await driver.discardSuspendedState().catch(() => undefined);
          message = `The saved state did not load, so it was dropped; start the VM again to boot it. ${message}`;
        }
        await finish(vm, actor, "start", from, to, false, message, { pid: null });
        const code = error instanceof HostToolMissingError ? "HOST_TOOL_MISSING" : "DRIVER_FAILED";
        throw new HangarError(code, `Starting VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
      }
    });
  }

  /**
   * Stop: [Running] -> Stopping -> Stopped; [Stopped] -> Stopped. An ACPI power button
   * press, `timeoutMs` for the guest, then forced. On error -> Stopped or ErrorUnknown.
   */
  async function stopVm(vmId: string, timeoutMs: number, actor: Actor): Promise<void> {
    const { vm, from, next } = await begin(vmId, "Stop");
    if (next === from) return;
    await guarded(vmId, async () => {
      const driver = driverFor(vmId);
      try {
        await driver.stop(timeoutMs);
        await finish(vm, actor, "stop", from, "Stopped", true, "Stopped", { pid: null });
      } catch (error) {
        if (error instanceof NotRunningError) {
          await finish(vm, actor, "stop", from, "Stopped", true, "qemu was not running", { pid: null });
          return;
        }
        const stillRuns = await driver.running().catch(() => true);
        const to: State = stillRuns ? "ErrorUnknown" : "Stopped";
        await finish(vm, actor, "stop", from, to, false, `Stop failed: ${errorMessage(error)}`, stillRuns ? {} : { pid: null });
        throw new HangarError("DRIVER_FAILED", `Stopping VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
      }
    });
  }

  /**
   * Delete: [Initial, Stopped, Suspended, ErrorUnknown] -> Deleting -> Deleted, then the row
   * goes (its events stay, naming it). A qemu still alive in ErrorUnknown is killed first.
   * On error -> ErrorUnknown.
   */
  async function deleteVm(vmId: string, actor: Actor): Promise<void> {
    const { vm, from } = await begin(vmId, "Delete");
    await guarded(vmId, async () => {
      const driver = driverFor(vmId);
      try {
        await driver.kill();
        await driver.delete();
      } catch (error) {
        await finish(vm, actor, "delete", from, "ErrorUnknown", false, `Delete failed: ${errorMessage(error)}`);
        throw new HangarError("DRIVER_FAILED", `Deleting VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
      }
      await db.vm.update({ where: { id: vmId }, data: { state: "Deleted", pid: null } });
      await record(vmId, vm.name, actor, "delete", from, "Deleted", true, "Deleted");
      await db.vm.delete({ where: { id: vmId } });
      bus.publish({ vmId, vmName: vm.name, state: "Gone", eventId: "" });
    });
  }

  /**
   * Suspend: [Running] -> Suspending -> Suspended; [Suspended] -> Suspended. The whole state
   * goes into the VM's disk and qemu ends (memory freed; it survives a server restart).
   * On error -> ErrorUnknown (the reconciler adopts a qemu that kept running).
   */
  async function suspendVm(vmId: string, actor: Actor): Promise<void> {
    const { vm, from, next } = await begin(vmId, "Suspend");
    if (next === from) return;
    await guarded(vmId, async () => {
      const driver = driverFor(vmId);
      const started = Date.now();
      try {
        await driver.suspend();
      } catch (error) {
        await finish(vm, actor, "suspend", from, "ErrorUnknown", false, `Suspend failed: ${errorMessage(error)}`);
        throw new HangarError("DRIVER_FAILED", `Suspending VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
      }
      await finish(vm, actor, "suspend", from, "Suspended", true, `State saved in ${Date.now() - started} ms`, { pid: null });
    });
  }

  /**
   * What the reconciler saw: moves the row from `from` to `to` (only if still in `from` and
   * no action of this process holds it) with an event saying why. Returns whether it moved.
   */
  async function observe(vmId: string, from: State, to: State, message: string, data: Record<string, unknown> = {}): Promise<boolean> {
    if (inFlight.has(vmId)) return false;
    const vm = await db.vm.findUnique({ where: { id: vmId }, select: { name: true } });
    if (!vm || !(await compareAndSet(vmId, from, to, data))) return false;
    await record(vmId, vm.name, "reconciler", "reconcile", from, to, true, message);
    return true;
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
        return driver.shell([command, ...args], vm.sshPort, privateKeyFile);
      },
      properties: async () => {
        const vm = await load(vmId);
        return { ip: GUEST_IP, cloneInfo: vm.cloneInfo ? (JSON.parse(vm.cloneInfo) as unknown) : null, sshPort: vm.sshPort };
      },
    };
  }

  return { cloneVm, startVm, stopVm, deleteVm, suspendVm, observe, instance, isBusy: (vmId: string) => inFlight.has(vmId), record, hostId };
}

/** The image's firmware column; anything unknown boots as BIOS, the column's default. */
function firmwareOf(value: string): Firmware {
  return FIRMWARES.find((f) => f === value) ?? "bios";
}
