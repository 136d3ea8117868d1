/**
 * Makes each VM row agree with the processes on this host, at start-up and every few
 * seconds: a Running VM whose qemu died becomes Stopped with the reason on it; every
 * transient state a crash left (Cloning, Starting, Stopping, Suspending, Deleting) is
 * carried out or rolled back, never left for good (an interrupted resume keeps its saved
 * state); a VM in an unknown state with no qemu is stopped; a live qemu is adopted, never started
 * twice; a restart cut short is completed. An action under way in this process is not a
 * crash: its VM is left alone.
 * After the start-up pass, the loop reads only rows that may have a qemu (WATCHED).
 */
import type { Db } from "../db.ts";
import type { Manager } from "../driver/manager.ts";
import { errorMessage } from "../errors.ts";
import { RECONCILER, type Lifecycle, type Note } from "./lifecycle.ts";
import { isSettled } from "./readiness.ts";
import { STATES, isState, type State } from "./state.ts";

/** What the reconciler does for a row in `state` whose qemu is (or is not) `alive`. */
export type Decision =
  | { kind: "none" }
  /** Only the row is behind: move it to `to` (the note's error goes on the VM). */
  | ({ kind: "mark"; to: State } & Note)
  /** A live qemu the row does not show as running: take it as Running. */
  | { kind: "adopt"; message: string }
  /** Starting: a resume completed or a boot adopted (qemu alive); back to Suspended or Stopped (no qemu). */
  | { kind: "finish-start" }
  /** Stopping, qemu alive: carry the stop out (ACPI, then forced) -> Stopped. */
  | { kind: "finish-stop" }
  /** Suspending: saved state complete -> Suspended (carried out); else -> Running or Stopped (rolled back). */
  | { kind: "finish-suspend" }
  /** Cloning: remove the half-made disk -> Initial (rolled back). */
  | { kind: "undo-clone" }
  /** Deleting (or Deleted, the row not yet dropped): kill, remove the files, drop the row (carried out). */
  | { kind: "finish-delete" };

/** What the reconciler can tell of a qemu that ended on its own: not why (it is not our child). */
export const QEMU_DIED = "qemu exited unexpectedly (the guest powered off, or qemu was killed or crashed); see the serial log";

/** Pure: the reconciliation table. */
export function decide(state: State, alive: boolean): Decision {
  switch (state) {
    case "Running":
      return alive ? { kind: "none" } : { kind: "mark", to: "Stopped", message: QEMU_DIED, error: `The VM stopped: ${QEMU_DIED}.` };
    case "Starting":
      return { kind: "finish-start" };
    case "Stopping":
      return alive
        ? { kind: "finish-stop" }
        : { kind: "mark", to: "Stopped", message: "A stop interrupted by a restart was carried out: qemu had already exited" };
    case "Suspending":
      return { kind: "finish-suspend" };
    case "Cloning":
      return { kind: "undo-clone" };
    case "Deleting":
    // Deleted rests only between a delete's removal of the files and of the row: a crash left it.
    case "Deleted":
      return { kind: "finish-delete" };
    case "Stopped":
    case "Suspended":
      return alive ? { kind: "adopt", message: "a qemu for this VM is running; adopted it" } : { kind: "none" };
    case "ErrorUnknown":
      // Unknown while something may run; with no qemu left, it is stopped (its events keep what failed).
      return alive
        ? { kind: "adopt", message: "a qemu for this VM is running; adopted it" }
        : {
            kind: "mark",
            to: "Stopped",
            message: "No qemu runs for this VM, whose state was unknown after a failed action: it is stopped",
            error: "An action on this VM failed and left no qemu running; it is stopped. Its events say what failed.",
          };
    case "Initial":
      return { kind: "none" };
  }
}

/**
 * The states the loop watches after start-up: a qemu that may be running (Running), an
 * action that may have been cut short (the transient states), and a VM in an unknown state.
 * Initial, Stopped, Suspended and Deleted rest: nothing of theirs runs.
 */
export const WATCHED: readonly State[] = STATES.filter((state) => !["Initial", "Stopped", "Suspended", "Deleted"].includes(state));

export interface ReconcilerDeps {
  db: Db;
  lifecycle: Lifecycle;
  driverFor: (vmId: string) => Manager;
  log?: (message: string) => void;
  /** How long the guest of an interrupted stop gets to power off before it is forced. */
  stopTimeoutMs?: number;
}

export function createReconciler({ db, lifecycle, driverFor, log = () => undefined, stopTimeoutMs = 30_000 }: ReconcilerDeps) {
  async function reconcileVm(vm: { id: string; name: string; state: string; restartPending?: boolean; releasePending?: boolean }): Promise<void> {
    const state = vm.state;
    if (!isState(state) || lifecycle.isBusy(vm.id)) return;
    await settle({ id: vm.id, name: vm.name, state });
    // A restart or a pool release cut short: completed once whatever it was in the middle of has settled.
    if (vm.restartPending) {
      const restarted = await lifecycle.resumeRestart(vm.id);
      if (restarted) log(`${vm.name}: restarted (an interrupted restart completed)`);
    }
    if (vm.releasePending) {
      const released = await lifecycle.resumeRelease(vm.id);
      if (released) log(`${vm.name}: released (an interrupted pool release completed)`);
    }
  }

  /**
   * A create cut short between its row and its disk (Initial, no error, its create recorded
   * and no clone after): carried out, as the create was about to. Start-up only: in a running
   * process that moment belongs to a create under way. A pool's members are the pool's to sweep.
   */
  async function finishCreate(vm: { id: string; name: string; state: string; error: string | null; poolId: string | null }): Promise<void> {
    if (vm.state !== "Initial" || vm.error !== null || vm.poolId !== null || lifecycle.isBusy(vm.id)) return;
    const actions = await db.event.findMany({ where: { vmId: vm.id }, select: { action: true } });
    if (!actions.some((e) => e.action === "create") || actions.some((e) => e.action === "clone")) return;
    await lifecycle.cloneVm(vm.id, RECONCILER);
    log(`${vm.name}: Initial -> Stopped (a create interrupted by a restart was carried out)`);
  }

  async function settle(vm: { id: string; name: string; state: State }): Promise<void> {
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
      case "finish-start":
        reached = await lifecycle.resumeStart(vm.id);
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
        // Then made again, as the create or clone was about to; a failure says why on the VM.
        if (reached === "Initial") {
          await lifecycle.cloneVm(vm.id, RECONCILER).then(
            () => (reached = "Stopped"),
            (error: unknown) => log(`${vm.name}: making its disk again failed: ${errorMessage(error)}`),
          );
        }
        break;
      case "finish-delete":
        reached = await lifecycle.resumeDelete(vm.id, vm.state === "Deleted" ? "Deleted" : "Deleting");
        break;
    }
    if (reached) log(`${vm.name}: ${vm.state} -> ${reached} (${decision.kind})`);
  }

  /**
   * One pass over this host's rows: every row, or (`watched`) only those in WATCHED states.
   * Only this host's VMs: another host's qemu is not ours to judge, even while that host is
   * offline (rows from before hosts existed were given a host at start-up).
   */
  async function pass(scope: "all" | "watched"): Promise<void> {
    const self = await lifecycle.hostId();
    const where = {
      hostId: self,
      ...(scope === "watched" ? { OR: [{ state: { in: [...WATCHED] } }, { restartPending: true }, { releasePending: true }] } : {}),
    };
    const vms = await db.vm.findMany({
      where,
      select: { id: true, name: true, state: true, restartPending: true, releasePending: true, error: true, poolId: true, pid: true, readyState: true },
    });
    for (const vm of vms) {
      try {
        await reconcileVm(vm);
        if (scope !== "all") continue;
        await finishCreate(vm);
        // A boot the previous process was watching: watched again, so its readiness settles.
        if (vm.state === "Running" && vm.pid && !isSettled(vm.readyState) && !lifecycle.isBusy(vm.id)) lifecycle.watchReadiness(vm.id, vm.pid);
      } catch (error) {
        log(`${vm.name}: reconcile failed: ${errorMessage(error)}`);
      }
    }
  }

  /** Passes never overlap; a call while a pass of the same scope is under way shares it. */
  let queue: Promise<void> = Promise.resolve();
  const underway = new Map<"all" | "watched", Promise<void>>();
  function passOnce(scope: "all" | "watched"): Promise<void> {
    const shared = underway.get(scope);
    if (shared) return shared;
    const run = queue.then(() => pass(scope)).finally(() => underway.delete(scope));
    underway.set(scope, run);
    queue = run.catch(() => undefined);
    return run;
  }

  /** One pass over every VM row: at start-up, where a crash may have left any row behind. */
  function reconcileAll(): Promise<void> {
    return passOnce("all");
  }

  /**
   * One pass over the rows whose qemu may run or whose action may be cut short (a restart
   * too, while its row rests Stopped between its stop and start): the idle
   * cost scales with running VMs, not with rows (a Stopped row costs nothing).
   */
  function reconcileWatched(): Promise<void> {
    return passOnce("watched");
  }

  /**
   * Runs reconcileAll now, then reconcileWatched every `intervalMs`; returns a stop function.
   * Only start-up looks at resting rows: a qemu for a Stopped row only appears behind a
   * restart's back (or a crash between a start and its row), which the first pass adopts.
   */
  function startLoop(intervalMs: number): () => void {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let first = true;
    const tick = async () => {
      const run = first ? reconcileAll() : reconcileWatched();
      first = false;
      await run.catch((error: unknown) => log(`reconcile failed: ${errorMessage(error)}`));
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  return { reconcileAll, reconcileWatched, reconcileVm, startLoop };
}
