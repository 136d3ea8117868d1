import { describe, expect, it } from "vitest";
import { HangarError } from "../errors.ts";
import type { Instance } from "./lifecycle.ts";
import type { State } from "./state.ts";
import { cleanupVm, waitForState } from "./wait.ts";

/** An instance whose state() walks through `states`, staying on the last. */
function scripted(states: State[]): Pick<Instance, "id" | "state"> {
  let i = 0;
  return { id: () => "vm-x", state: async () => states[Math.min(i++, states.length - 1)] ?? "ErrorUnknown" };
}

describe("waitForState", () => {
  it("resolves once the final state is seen through allowed intermediates", async () => {
    await waitForState(scripted(["Stopped", "Starting", "Running"]), "Running", { intermediate: ["Stopped", "Starting"], intervalMs: 1 });
  });

  it("fails on an intermediate state that is not allowed", async () => {
    const error = await waitForState(scripted(["Starting", "ErrorUnknown"]), "Running", { intermediate: ["Starting"], intervalMs: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HangarError);
    expect((error as HangarError).message).toBe("VM vm-x reached ErrorUnknown while waiting for Running (allowed on the way: Starting).");
  });

  it("fails after the timeout, naming the state it is stuck in", async () => {
    const error = await waitForState(scripted(["Starting"]), "Running", { timeoutMs: 30, intervalMs: 5 }).catch((e: unknown) => e);
    expect((error as HangarError).code).toBe("WAIT_FAILED");
    expect((error as HangarError).message).toContain("it is Starting");
  });
});

/** A fake Instance that follows the state table for stop and delete. */
function fakeInstance(initial: State) {
  let state: State = initial;
  const calls: string[] = [];
  const inst: Instance = {
    id: () => "vm-y",
    clone: async () => undefined,
    start: async () => undefined,
    stop: async (timeoutMs) => {
      calls.push(`stop ${timeoutMs}`);
      state = "Stopped";
      return [undefined, undefined];
    },
    suspendable: () => true,
    suspend: async () => undefined,
    delete: async () => {
      calls.push("delete");
      state = "Deleted";
    },
    state: async () => state,
    exec: async () => ({ stdout: "", stderr: "", exitCode: 0 }),
    properties: async () => ({ ip: "", cloneInfo: null, sshPort: null }),
  };
  return { inst, calls };
}

describe("cleanupVm", () => {
  const cases: [State, string[]][] = [
    ["Running", ["stop 1000", "delete"]],
    ["Stopped", ["delete"]],
    ["Suspended", ["delete"]],
    ["ErrorUnknown", ["delete"]],
    ["Initial", ["delete"]],
    ["Deleted", []],
  ];
  it.each(cases)("cleans up a %s VM with %j", async (state, expected) => {
    const { inst, calls } = fakeInstance(state);
    await cleanupVm(inst, 1000);
    expect(calls).toEqual(expected);
    expect(await inst.state()).toBe("Deleted");
  });

  it("forces a VM that is thrown away off at once when told to", async () => {
    const { inst, calls } = fakeInstance("Running");
    await cleanupVm(inst, 1000, 0);
    expect(calls).toEqual(["stop 0", "delete"]);
  });
});
