/**
 * Makes each VM row agree with the processes on this host, at start-up and every few
 * seconds: a Running VM whose qemu died becomes Stopped; a VM a crash left in Starting,
 * Stopping, Cloning or Deleting is resolved; a live qemu is adopted, never started twice.
 */
import type { Db } from "../db.ts";
import type { Manager } from "../driver/manager.ts";
import { errorMessage } from "../errors.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { isState, type State } from "./state.ts";

/** What the reconciler does for a row in `state` whose qemu is (or is not) `alive`. */
export type Decision =
  | { kind: "none" }
  | { kind: "mark"; to: State; message: string }
  | { kind: "adopt"; message: string }
  | { kind: "finish-delete" };

/** Pure: the reconciliation table. */
export function decide(state: State, alive: boolean): Decision {
  switch (state) {
    case "Running":
      return alive ? { kind: "none" } : { kind: "mark", to: "Stopped", message: "qemu is gone (it exited or was killed)" };
    case "Starting":
      return alive
        ? { kind: "adopt", message: "qemu was started before a restart; adopted it" }
        : { kind: "mark", to: "Stopped", message: "a start was interrupted and no qemu runs" };
    case "Stopping":
      return alive
        ? { kind: "adopt", message: "a stop was interrupted and qemu still runs; adopted it" }
        : { kind: "mark", to: "Stopped", message: "a stop was interrupted; qemu is gone" };
    case "Stopped":
    case "Suspended":
    case "ErrorUnknown":
      return alive ? { kind: "adopt", message: "a qemu for this VM is running; adopted it" } : { kind: "none" };
    case "Cloning":
      return { kind: "mark", to: "Initial", message: "a clone was interrupted; clone again or delete" };
    case "Deleting":
      return { kind: "finish-delete" };
    case "Initial":
    case "Suspending":
    case "Deleted":
      return { kind: "none" };
  }
}

export interface ReconcilerDeps {
  db: Db;
  lifecycle: Lifecycle;
  driverFor: (vmId: string) => Manager;
  log?: (message: string) => void;
}

export function createReconciler({ db, lifecycle, driverFor, log = () => undefined }: ReconcilerDeps) {
  let running: Promise<void> | undefined;

  async function reconcileVm(vm: { id: string; name: string; state: string }): Promise<void> {
    if (!isState(vm.state) || lifecycle.isBusy(vm.id)) return;
    const driver = driverFor(vm.id);
    const alive = await driver.running();
    const decision = decide(vm.state, alive);
    switch (decision.kind) {
      case "none":
        return;
      case "mark":
        if (await lifecycle.observe(vm.id, vm.state, decision.to, decision.message, { pid: null })) {
          log(`${vm.name}: ${vm.state} -> ${decision.to}: ${decision.message}`);
        }
        return;
      case "adopt": {
        const pid = await driver.pid();
        const ssh = (await driver.forwards().catch(() => [])).find((f) => f.guestPort === 22);
        if (await lifecycle.observe(vm.id, vm.state, "Running", decision.message, { pid, sshPort: ssh?.hostPort ?? null })) {
          log(`${vm.name}: ${vm.state} -> Running: ${decision.message}`);
        }
        return;
      }
      case "finish-delete":
        if (await lifecycle.observe(vm.id, "Deleting", "ErrorUnknown", "a delete was interrupted; delete it again")) {
          log(`${vm.name}: Deleting -> ErrorUnknown`);
        }
        return;
    }
  }

  /** One pass over every VM row. Passes never overlap. */
  async function reconcileAll(): Promise<void> {
    if (running) return running;
    running = (async () => {
      const self = await lifecycle.hostId();
      // Only this host's VMs: another host's qemu is not ours to judge (rows from before
      // hosts existed have none and belong to whoever runs them).
      const vms = await db.vm.findMany({ where: { OR: [{ hostId: self }, { hostId: null }] }, select: { id: true, name: true, state: true } });
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
