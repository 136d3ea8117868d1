// Which VMs an evacuation relocates and in which steps, with the steps faked: the moves
// themselves are tested between two real hosts (everywhere.postgres.test.ts).
import { describe, expect, it } from "vitest";
import { HangarError } from "../errors.ts";
import { relocateAll, relocationSummary, type EvacuatedVm, type RelocationSteps } from "./evacuate.ts";

const vm = (name: string, state: string, waitsInPool: string | null = null): EvacuatedVm => ({ id: `id-${name}`, name, state, memoryMiB: 256, waitsInPool });

/** Steps that log what they did; `fail` names the steps that throw, as "move:web". */
function fakeSteps(fail: string[] = []) {
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const step = (what: string) => async (vmId: string) => {
    running += 1;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running -= 1;
    const name = vmId.replace("id-", "");
    log.push(`${what}:${name}`);
    if (fail.includes(`${what}:${name}`)) throw new HangarError("DRIVER_FAILED", `${what} of ${name} failed`);
  };
  const steps: RelocationSteps = {
    target: async (v, isRunning) => {
      if (fail.includes(`target:${v.name}`)) throw new HangarError("HOST_FULL", "No online host has 256 MiB of memory left for a VM");
      log.push(`target:${v.name}:${isRunning ? "room" : "any"}`);
      return { id: "beta-id", name: "beta" };
    },
    stop: step("stop"),
    move: async (vmId, hostId) =>
      step(`move>${hostId}`)(vmId).catch(() => Promise.reject(new HangarError("HOST_OFFLINE", "host beta went offline before it had taken the VM"))),
    start: step("start"),
  };
  return { steps, log, most: () => most };
}

describe("relocateAll", () => {
  it("moves a Stopped and a Suspended VM, and stops, moves and starts a Running one", async () => {
    const { steps, log } = fakeSteps();
    const outcome = await relocateAll([vm("db", "Stopped"), vm("web", "Running"), vm("cache", "Suspended")], steps);
    expect(outcome).toEqual({
      moved: [
        { id: "id-cache", name: "cache", to: "beta", restarted: false, problem: null },
        { id: "id-db", name: "db", to: "beta", restarted: false, problem: null },
        { id: "id-web", name: "web", to: "beta", restarted: true, problem: null },
      ],
      stayed: [],
    });
    expect(log.filter((l) => l.includes(":cache"))).toEqual(["target:cache:any", "move>beta-id:cache"]);
    expect(log.filter((l) => l.endsWith(":web"))).toEqual(["stop:web", "move>beta-id:web", "start:web"]);
    expect(log).toContain("target:web:room");
    expect(log).toContain("target:db:any");
    expect(relocationSummary(outcome)).toBe("3 VMs moved (1 started again there), 0 stayed");
  });

  it.each([
    ["Starting", "it is Starting; try again once it is Running, Stopped or Suspended"],
    ["Stopping", "it is Stopping"],
    ["ErrorUnknown", "it is ErrorUnknown"],
  ])("leaves a %s VM where it is, saying why", async (state, reason) => {
    const { steps, log } = fakeSteps();
    const { moved, stayed } = await relocateAll([vm("x", state)], steps);
    expect(moved).toEqual([]);
    expect(stayed).toEqual([{ id: "id-x", name: "x", reason: expect.stringContaining(reason) }]);
    expect(log).toEqual([]);
  });

  it("leaves a VM waiting in a pool with its pool", async () => {
    const { steps, log } = fakeSteps();
    const { stayed } = await relocateAll([vm("ci-1", "Running", "ci")], steps);
    expect(stayed[0]?.reason).toBe("it waits in pool ci, whose VMs live on the pool's host; delete or shrink the pool to empty the host");
    expect(log).toEqual([]);
  });

  it("starts a Running VM again where it was when its move fails", async () => {
    const { steps, log } = fakeSteps(["move>beta-id:web"]);
    const { moved, stayed } = await relocateAll([vm("web", "Running")], steps);
    expect(moved).toEqual([]);
    expect(stayed).toEqual([{ id: "id-web", name: "web", reason: "host beta went offline before it had taken the VM (it runs again where it was)" }]);
    expect(log).toEqual(["target:web:room", "stop:web", "move>beta-id:web", "start:web"]);
  });

  it("says so when a moved VM does not start there, or a VM has nowhere to go", async () => {
    const { steps, log } = fakeSteps(["start:web", "target:db"]);
    const outcome = await relocateAll([vm("web", "Running"), vm("db", "Running")], steps);
    expect(outcome.moved).toEqual([{ id: "id-web", name: "web", to: "beta", restarted: false, problem: "it did not start there: start of web failed" }]);
    expect(outcome.stayed).toEqual([{ id: "id-db", name: "db", reason: "No online host has 256 MiB of memory left for a VM" }]);
    // Nowhere to go: it was not stopped.
    expect(log).not.toContain("stop:db");
  });

  it("relocates two VMs at a time, every one of them once", async () => {
    const { steps, most } = fakeSteps();
    const vms = Array.from({ length: 7 }, (_, i) => vm(`vm-${i}`, "Stopped"));
    const { moved, stayed } = await relocateAll(vms, steps);
    expect(moved.map((m) => m.name)).toEqual(vms.map((v) => v.name));
    expect(stayed).toEqual([]);
    expect(most()).toBe(2);
  });
});
