/**
 * The instance lifecycle state machine of seed 004 (`vms`): states, actions and the
 * transition table. Pure: no I/O, no database, no qemu.
 */

import { VM_STATES } from "../../lib/vocabulary.ts";

export const STATES = VM_STATES;
export type State = (typeof STATES)[number];

/** "None" is the seed's ActionNone: the no-op used to wait while an operation runs. */
export const ACTIONS = ["None", "Clone", "Start", "Stop", "Suspend", "Delete"] as const;
export type Action = (typeof ACTIONS)[number];

/** Seed 004's table, plus Initial -Delete-> Deleting to remove a half-done clone. */
const TABLE: Readonly<Record<State, Partial<Record<Action, State>>>> = {
  Initial: { Clone: "Cloning", Delete: "Deleting" },
  Cloning: { None: "Cloning" },
  Starting: { None: "Starting" },
  Running: { Stop: "Stopping", Suspend: "Suspending" },
  Stopping: { None: "Stopping" },
  Stopped: { Start: "Starting", Stop: "Stopped", Delete: "Deleting" },
  Suspending: { None: "Suspending" },
  Suspended: { Start: "Starting", Suspend: "Suspended", Delete: "Deleting" },
  Deleting: { None: "Deleting" },
  Deleted: { Clone: "Cloning" },
  ErrorUnknown: { Delete: "Deleting" },
};

/** The state reached by applying `action` to `from`, or undefined when it is not allowed. */
export function transition(from: State, action: Action): State | undefined {
  return TABLE[from][action];
}

/** The actions allowed from `state`, in the order of ACTIONS. */
export function validActions(state: State): Action[] {
  return ACTIONS.filter((action) => TABLE[state][action] !== undefined);
}

/** States in which an operation is in progress: the only action is to wait. */
export function isTransient(state: State): boolean {
  const actions = validActions(state);
  return actions.length === 1 && actions[0] === "None";
}

export function isState(value: string): value is State {
  return (STATES as readonly string[]).includes(value);
}

/** PrintStates: one line a state, its actions and where each leads. */
export function describeStates(): string {
  return STATES.map((state) => {
    const moves = validActions(state).map((action) => {
      const label = action === "None" ? "(waiting)" : action;
      return `${label} -> ${TABLE[state][action]}`;
    });
    return `${state} ${moves.join(", ")}`;
  }).join("\n");
}
