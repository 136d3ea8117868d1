/** A VM state as a coloured badge; the text is the state itself (e.g. "Running"). */
import type { VmState } from "./vm-filter.ts";

type Tone = "ok" | "idle" | "busy" | "bad";

/**
 * Every state with its colour. Keyed by the API's state type, so a state the server adds
 * fails the type check here until it has a colour (and a place in the state filter).
 */
const TONE: Record<VmState, Tone> = {
  Initial: "idle",
  Cloning: "busy",
  Starting: "busy",
  Running: "ok",
  Stopping: "busy",
  Stopped: "idle",
  Suspending: "busy",
  Suspended: "idle",
  Deleting: "busy",
  Deleted: "idle",
  ErrorUnknown: "bad",
};

function isVmState(state: string): state is VmState {
  return Object.hasOwn(TONE, state);
}

/** The states, in the state machine's order, for pickers. */
export const STATE_NAMES: readonly VmState[] = Object.keys(TONE).filter(isVmState);

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`badge badge-${isVmState(state) ? TONE[state] : "busy"}`} data-testid="vm-state">
      {state}
    </span>
  );
}

/** Beside a VM's state while its host does not beat: the state is the last one known. */
export function HostOfflineBadge({ host }: { host: string | undefined }) {
  return (
    <span
      className="badge badge-bad"
      data-testid="vm-host-offline"
      title={`Host ${host ?? "?"} sends no heartbeat: this state is the last one known, and nothing acts on the VM until that host is back.`}
    >
      host offline
    </span>
  );
}
