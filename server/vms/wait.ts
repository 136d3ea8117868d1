/** Seed 004's WaitForState, WaitForStateFunc and CleanupVM. */
import { setTimeout as sleep } from "node:timers/promises";
import { HangarError } from "../errors.ts";
import type { Instance } from "./lifecycle.ts";
import type { State } from "./state.ts";

export interface WaitOptions {
  /** States allowed on the way; any other one fails the wait. Empty: anything goes. */
  intermediate?: State[];
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
  /** How the messages name the VM: its quoted name for a person who asked (vm.wait), else its id. */
  label?: string;
}

/**
 * One poll: true once `final` is reached; throws on an intermediate state that is not
 * allowed. Seed: WaitForStateFunc.
 */
export function waitForStateFunc(inst: Pick<Instance, "id" | "state">, final: State, intermediate: State[] = [], label = inst.id()) {
  return async (): Promise<boolean> => {
    const state = await inst.state();
    if (state === final) return true;
    if (intermediate.length > 0 && !intermediate.includes(state)) {
      throw new HangarError("WAIT_FAILED", `VM ${label} reached ${state} while waiting for ${final} (allowed on the way: ${intermediate.join(", ")}).`);
    }
    return false;
  };
}

/** Polls until `final`, failing on an unexpected intermediate state or after the timeout. */
export async function waitForState(inst: Pick<Instance, "id" | "state">, final: State, options: WaitOptions = {}): Promise<void> {
  const { intermediate = [], timeoutMs = 60_000, intervalMs = 200, signal, label = inst.id() } = options;
  const poll = waitForStateFunc(inst, final, intermediate, label);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await poll()) return;
    if (signal?.aborted) throw new HangarError("WAIT_FAILED", `Waiting for VM ${label} to be ${final} was cancelled.`);
    if (Date.now() >= deadline) {
      throw new HangarError("WAIT_FAILED", `VM ${label} did not reach ${final} within ${Math.round(timeoutMs / 1000)} s (it is ${await inst.state()}).`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Stops (if needed) and deletes `inst`. A VM in an operation is waited for first (up to
 * `timeoutMs`); a running guest gets `stopTimeoutMs` to power off before it is forced (0: a
 * VM thrown away, whose guest may ignore the power button, as a paused one does). A
 * Suspended VM's saved state is dropped (it is stopped) before the disk goes. Seed: CleanupVM.
 */
export async function cleanupVm(inst: Instance, timeoutMs: number, stopTimeoutMs = timeoutMs): Promise<void> {
  const settle = async (): Promise<State> => {
    const deadline = Date.now() + timeoutMs;
    let state = await inst.state();
    while (["Cloning", "Starting", "Stopping", "Suspending", "Deleting"].includes(state) && Date.now() < deadline) {
      await sleep(200);
      state = await inst.state();
    }
    return state;
  };
  let state = await settle();
  if (state === "Running") {
    const [, stopError] = await inst.stop(stopTimeoutMs);
    if (stopError) throw stopError;
    state = await inst.state();
  }
  switch (state) {
    case "Deleted":
      return;
    case "Stopped":
    case "Suspended":
    case "ErrorUnknown":
    case "Initial":
      await inst.delete();
      return;
    default:
      throw new HangarError("WAIT_FAILED", `VM ${inst.id()} is still ${state}; cannot clean it up now.`);
  }
}
