import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Hangar } from "../hangar.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createVm } from "./inventory.ts";
import { decide } from "./reconcile.ts";
import { STATES } from "./state.ts";

describe("decide", () => {
  it.each(STATES.flatMap((s) => [[s, true] as const, [s, false] as const]))("%s with qemu alive=%s", (state, alive) => {
    const decision = decide(state, alive);
    // A live qemu is never marked Stopped (it would be started twice); a dead one never Running.
    if (alive) expect(decision.kind === "mark" && decision.to === "Stopped").toBe(false);
    if (!alive) expect(decision.kind).not.toBe("adopt");
  });

  it("marks a Running VM without qemu Stopped and adopts a live one left Starting", () => {
    expect(decide("Running", false)).toMatchObject({ kind: "mark", to: "Stopped" });
    expect(decide("Starting", true)).toMatchObject({ kind: "adopt" });
    expect(decide("Starting", false)).toMatchObject({ kind: "mark", to: "Stopped" });
    expect(decide("Cloning", false)).toMatchObject({ kind: "mark", to: "Initial" });
  });
});

describe("reconciler", () => {
  let t: TestHangar;
  let hangar: Hangar;
  let fake: FakeDriver;

  beforeEach(async () => {
    fake = new FakeDriver();
    t = await createTestHangar({ driverFor: fake.managerFor });
    hangar = t.hangar;
  });
  afterEach(() => t.cleanup());

  async function runningVm() {
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await createVm(hangar, { name: "r-1", imageId: image.id, cpus: 1, memoryMiB: 128 }, "t");
    await hangar.lifecycle.startVm(vm.id, "t");
    return vm;
  }

  it("marks a VM whose qemu died Stopped, with an event saying so", async () => {
    const vm = await runningVm();
    fake.vm(vm.id).running = false;
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.pid]).toEqual(["Stopped", null]);
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, actor: "reconciler" } });
    expect([event.fromState, event.toState, event.message]).toEqual(["Running", "Stopped", "qemu is gone (it exited or was killed)"]);
  });

  it("adopts a live qemu found for a VM left Starting, without starting it again", async () => {
    const vm = await runningVm();
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting", sshPort: null } });
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Running");
    expect(row.sshPort).toBe(40000 + fake.vm(vm.id).pid);
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(1);
  });

  it("leaves a VM alone while an action of this process holds it", async () => {
    const vm = await runningVm();
    fake.startDelayMs = 100;
    await hangar.lifecycle.stopVm(vm.id, 10, "t");
    const starting = hangar.lifecycle.startVm(vm.id, "t");
    await new Promise((r) => setTimeout(r, 20));
    await hangar.reconciler.reconcileAll();
    await starting;
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Running");
    expect(await hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } })).toBe(0);
  });
});
