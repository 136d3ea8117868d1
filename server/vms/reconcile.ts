/**
 * Makes each VM row agree with the processes on this host, at start-up and every few
 * seconds: a Running VM whose qemu died becomes Stopped with the reason on it; every
 * transient state a crash left (Cloning, Starting, Stopping, Suspending, Deleting) is
 * carried out or rolled back, never left for good; a live qemu is adopted, never started
 * twice. An action under way in this process is not a crash: its VM is left alone.
 */
import type { Db } from "../db.ts";
import type { Manager } from "../driver/manager.ts";
import { errorMessage } from "../errors.ts";
import type { Lifecycle, Note } from "./lifecycle.ts";
import { isState, type State } from "./state.ts";

/** What the reconciler does for a row in `state` whose qemu is (or is not) `alive`. */
export type Decision =
  | { kind: "none" }
  /** Only the row is behind: move it to `to` (the note's error goes on the VM). */
  | ({ kind: "mark"; to: State } & Note)
  /** A live qemu the row does not show as running: take it as Running. */
  | { kind: "adopt"; message: string }
  /** Stopping, qemu alive: carry the stop out (ACPI, then forced) -> Stopped. */
  | { kind: "finish-stop" }
  /** Suspending: saved state complete -> Suspended (carried out); else -> Running or Stopped (rolled back). */
  | { kind: "finish-suspend" }
  /** Cloning: remove the half-made disk -> Initial (rolled back). */
  | { kind: "undo-clone" }
  /** Deleting: kill, remove the files, drop the row (carried out). */
  | { kind: "finish-delete" };

/** What the reconciler can tell of a qemu that ended on its own: not why (it is not our child). */
export const QEMU_DIED = "qemu exited unexpectedly (the guest powered off, or qemu was killed or crashed); see the serial log";

/** Pure: the reconciliation table. */
export function decide(state: State, alive: boolean): Decision {
  switch (state) {
    case "Running":
      return alive ? { kind: "none" } : { kind: "mark", to: "Stopped", message: QEMU_DIED, error: `The VM stopped: ${QEMU_DIED}.` };
    case "Starting":
      return alive
        ? { kind: "adopt", message: "A start interrupted by a restart was carried out: qemu runs, so it was adopted" }
        : {
            kind: "mark",
            to: "Stopped",
            message: "A start interrupted by a restart was rolled back: no qemu runs",
            error: "The start was interrupted by a restart of Hangar; start the VM again.",
          };
    case "Stopping":
      return alive
        ? { kind: "finish-stop" }
        : { kind: "mark", to: "Stopped", message: "A stop interrupted by a restart was carried out: qemu had already exited" };
    case "Suspending":
      return { kind: "finish-suspend" };
    case "Cloning":
      return { kind: "undo-clone" };
    case "Deleting":
      return { kind: "finish-delete" };
    case "Stopped":
    case "Suspended":
    case "ErrorUnknown":
      return alive ? { kind: "adopt", message: "a qemu for this VM is running; adopted it" } : { kind: "none" };
    case "Initial":
    case "Deleted":
      return { kind: "none" };
  }
}

export interface ReconcilerDeps {
  db: Db;
  lifecycle: Lifecycle;
  driverFor: (vmId: string) => Manager;
  log?: (message: string) => void;
  /** How long the guest of an interrupted stop gets to power off before it is forced. */
  stopTimeoutMs?: number;
}

export function createReconciler({ db, lifecycle, driverFor, log = () => undefined, stopTimeoutMs = 30_000 }: ReconcilerDeps) {
  let running: Promise<void> | undefined;

  async function reconcileVm(vm: { id: string; name: string; state: string }): Promise<void> {
    if (!isState(vm.state) || lifecycle.isBusy(vm.id)) return;
    const driver = driverFor(vm.id);
    const alive = await driver.running();
    const decision = decide(vm.state, alive);
    let reached: State | undefined;
    switch (decision.kind) {
      case "none":
        return;
      case "mark":
        if (await lifecycle.observe(vm.id, vm.state, decision.to, decision, { pid: null })) reached = decision.to;
        break;
      case "adopt": {
        const pid = await driver.pid();
        const ssh = (await driver.forwards().catch(() => [])).find((f) => f.guestPort === 22);
        if (await lifecycle.observe(vm.id, vm.state, "Running", { message: decision.message }, { pid, sshPort: ssh?.hostPort ?? null })) {
          reached = "Running";
        }
        break;
      }
      case "finish-stop":
        reached = await lifecycle.resumeStop(vm.id, stopTimeoutMs);
        break;
      case "finish-suspend":
        reached = await lifecycle.resumeSuspend(vm.id);
        break;
      case "undo-clone":
        reached = await lifecycle.undoClone(vm.id);
        break;
      case "finish-delete":
        reached = await lifecycle.resumeDelete(vm.id);
        break;
    }
    if (reached) log(`${vm.name}: ${vm.state} -> ${reached} (${decision.kind})`);
  }

  /** One pass over every VM row. Passes never overlap. */
  async function reconcileAll(): Promise<void> {
    if (running) return running;
    running = (async () => {
      const self = await lifecycle.hostId();
      // Only this host's VMs: another host's qemu is not ours to judge, even while that host
      // is offline (rows from before hosts existed were given a host at start-up).
      const vms = await db.vm.findMany({ where: { hostId: self }, select: { id: true, name: true, state: true } });
      for (const vm of vms) {
        try {
          await reconcileVm(vm);
        } catch (error) {
          log(`${vm.name}: reconcile failed: ${errorMessage(error)}`);
        }
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  /** Runs reconcileAll now and every `intervalMs`; returns a stop function. */
  function startLoop(intervalMs: number): () => void {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = async () => {
      await reconcileAll().catch((error: unknown) => log(`reconcile failed: ${errorMessage(error)}`));
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  return { reconcileAll, reconcileVm, startLoop };
}
