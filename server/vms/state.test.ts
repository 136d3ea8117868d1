import { describe, expect, it } from "vitest";
import { ACTIONS, STATES, describeStates, isTransient, transition, validActions, type Action, type State } from "./state.ts";

// Seed 004's table, restated by hand, plus Initial -Delete-> Deleting.
const EXPECTED: Record<State, Partial<Record<Action, State>>> = {
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

describe("transition", () => {
  it("has the eleven states and six actions of the seed", () => {
    expect(STATES).toHaveLength(11);
    expect(ACTIONS).toEqual(["None", "Clone", "Start", "Stop", "Suspend", "Delete"]);
  });

  const pairs = STATES.flatMap((state) => ACTIONS.map((action) => [state, action, EXPECTED[state][action]] as const));
  it.each(pairs)("%s -%s-> %s", (state, action, expected) => {
    expect(transition(state, action)).toBe(expected);
  });
});

describe("validActions", () => {
  it.each(STATES)("lists exactly the actions %s allows", (state) => {
    expect(validActions(state)).toEqual(ACTIONS.filter((a) => EXPECTED[state][a] !== undefined));
  });

  it("marks only in-progress states as transient", () => {
    expect(STATES.filter(isTransient)).toEqual(["Cloning", "Starting", "Stopping", "Suspending", "Deleting"]);
  });
});

describe("describeStates", () => {
  it("prints one line a state like the seed's PrintStates", () => {
    expect(describeStates()).toBe(
      [
        "Initial Clone -> Cloning, Delete -> Deleting",
        "Cloning (waiting) -> Cloning",
        "Starting (waiting) -> Starting",
        "Running Stop -> Stopping, Suspend -> Suspending",
        "Stopping (waiting) -> Stopping",
        "Stopped Start -> Starting, Stop -> Stopped, Delete -> Deleting",
        "Suspending (waiting) -> Suspending",
        "Suspended Start -> Starting, Suspend -> Suspended, Delete -> Deleting",
        "Deleting (waiting) -> Deleting",
        "Deleted Clone -> Cloning",
        "ErrorUnknown Delete -> Deleting",
      ].join("\n"),
    );
  });
});
