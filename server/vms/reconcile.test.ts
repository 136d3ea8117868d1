import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Hangar } from "../hangar.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createVm } from "./inventory.ts";
import { QEMU_DIED, decide, type Decision } from "./reconcile.ts";
import { STATES, isTransient, type State } from "./state.ts";

describe("decide", () => {
  // Every state × qemu alive: what the reconciler does. No transient state is left as it is.
  const table: [State, boolean, Decision["kind"], State?][] = [
    ["Initial", true, "none"],
    ["Initial", false, "none"],
    ["Cloning", true, "undo-clone"],
    ["Cloning", false, "undo-clone"],
    ["Starting", true, "finish-start"],
    ["Starting", false, "finish-start"],
    ["Running", true, "none"],
    ["Running", false, "mark", "Stopped"],
    ["Stopping", true, "finish-stop"],
    ["Stopping", false, "mark", "Stopped"],
    ["Stopped", true, "adopt"],
    ["Stopped", false, "none"],
    ["Suspending", true, "finish-suspend"],
    ["Suspending", false, "finish-suspend"],
    ["Suspended", true, "adopt"],
    ["Suspended", false, "none"],
    ["Deleting", true, "finish-delete"],
    ["Deleting", false, "finish-delete"],
    ["Deleted", true, "finish-delete"],
    ["Deleted", false, "finish-delete"],
    ["ErrorUnknown", true, "adopt"],
    ["ErrorUnknown", false, "mark", "Stopped"],
  ];

  it("covers every state with qemu alive and dead", () => {
    expect(table.map(([state, alive]) => `${state}:${alive}`)).toEqual(STATES.flatMap((s) => [`${s}:true`, `${s}:false`]));
  });

  it.each(table)("%s with qemu alive=%s: %s %s", (state, alive, kind, to) => {
    const decision = decide(state, alive);
    expect(decision.kind).toBe(kind);
    if (decision.kind === "mark") expect(decision.to).toBe(to);
    if (isTransient(state)) expect(decision.kind).not.toBe("none");
  });

  it("puts the reason on the VM when qemu died or an unknown state turned out stopped, not when a stop completed", () => {
    expect(decide("Running", false)).toMatchObject({ message: QEMU_DIED, error: expect.stringContaining(QEMU_DIED) });
    expect(decide("ErrorUnknown", false)).toMatchObject({ error: expect.stringMatching(/Its events say what failed/) });
    expect(decide("Stopping", false)).not.toHaveProperty("error");
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

  it("marks a VM whose qemu died Stopped, with the reason on the VM and an event saying so", async () => {
    const vm = await runningVm();
    fake.vm(vm.id).running = false;
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.pid]).toEqual(["Stopped", null]);
    expect(row.error).toBe(`The VM stopped: ${QEMU_DIED}.`);
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, actor: "reconciler" } });
    expect([event.fromState, event.toState, event.message, event.ok]).toEqual(["Running", "Stopped", QEMU_DIED, false]);

    // The next successful action clears it.
    await hangar.lifecycle.startVm(vm.id, "t");
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).error).toBeNull();
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

  it("completes a resume a crash cut short while qemu runs: the saved state loaded and dropped, forwards and clock brought up to date", async () => {
    const vm = await runningVm();
    await hangar.lifecycle.suspendVm(vm.id, "t");
    // What a crash between qemu's launch (paused, devices not loaded) and the load leaves.
    const guest = fake.vm(vm.id);
    Object.assign(guest, { running: true, paused: true, pid: 4242 });
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting" } });
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id }, include: { ports: true } });
    expect([row.state, row.pid, row.sshPort, row.error]).toEqual(["Running", 4242, 40000 + 4242, null]);
    expect(guest).toMatchObject({ saved: false, paused: false });
    await expect.poll(() => guest.calls.slice(-2)).toEqual(["finish-resume", "clock"]);
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, actor: "reconciler" } });
    expect(event.message).toMatch(/^A resume interrupted by a restart was completed/);
  });

  it("puts a resume a crash cut short back to Suspended when no qemu runs, keeping the saved state for the next start", async () => {
    const vm = await runningVm();
    await hangar.lifecycle.suspendVm(vm.id, "t");
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting" } });
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.error]).toEqual(["Suspended", "The resume was interrupted by a restart of Hangar; start the VM again to resume it."]);
    expect(fake.vm(vm.id).saved).toBe(true);
    await hangar.lifecycle.startVm(vm.id, "t");
    expect(fake.vm(vm.id).calls.filter((c) => c === "resume")).toHaveLength(1);
  });

  it("carries out at start-up a create cut short between its row and its disk, and leaves rows no create recorded", async () => {
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const cut = await hangar.db.vm.create({ data: { name: "cut-short", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await hangar.lifecycle.hostId() } });
    await hangar.recorder.record({ stream: "vm", vm: cut, actor: "t", action: "create", to: "Initial", ok: true, message: "Created from image base" });
    const bare = await hangar.db.vm.create({
      data: { name: "no-create-event", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await hangar.lifecycle.hostId() },
    });
    await hangar.reconciler.reconcileAll();
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: cut.id } })).state).toBe("Stopped");
    expect(fake.vm(cut.id).calls).toEqual(["create"]);
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: bare.id } })).state).toBe("Initial");
  });

  it("watches again at start-up the boot of a Running VM whose readiness had not settled", async () => {
    const vm = await runningVm();
    await expect.poll(async () => (await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).readyState).toBe("ready");
    // As a previous process left it: booting, and nobody here watching.
    await hangar.db.vm.update({ where: { id: vm.id }, data: { readyState: "booting", readyDetail: null } });
    await hangar.reconciler.reconcileAll();
    await expect.poll(async () => (await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).readyState).toBe("ready");
  });

  it("stops a VM left in an unknown state once no qemu runs for it", async () => {
    const vm = await runningVm();
    fake.vm(vm.id).running = false;
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "ErrorUnknown" } });
    await hangar.reconciler.reconcileAll();
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Stopped");
    await hangar.lifecycle.startVm(vm.id, "t");
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

  it("does not take a suspend under way in this process for one a crash interrupted", async () => {
    const vm = await runningVm();
    fake.suspendDelayMs = 100;
    const suspending = hangar.lifecycle.suspendVm(vm.id, "t");
    await expect.poll(async () => (await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Suspending");
    await hangar.reconciler.reconcileAll();
    await suspending;
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Suspended");
    expect(await hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } })).toBe(0);
    expect(fake.vm(vm.id).calls).not.toContain("settle-suspend");
  });

  it("completes a restart that Hangar's end cut short between its stop and its start", async () => {
    const vm = await runningVm();
    // What a restart leaves when the process dies right after its stop: the row Stopped, the mark on.
    await hangar.lifecycle.stopVm(vm.id, 10, "t");
    await hangar.db.vm.update({ where: { id: vm.id }, data: { restartPending: true } });
    await hangar.reconciler.reconcileWatched();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.restartPending]).toEqual(["Running", false]);
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(2);
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "restart" } });
    expect(event).toMatchObject({ actor: "system", ok: true, message: expect.stringMatching(/^A restart interrupted by a restart of Hangar was completed/) });
  });

  it("carries out a restart's interrupted stop first, then starts the VM", async () => {
    const vm = await runningVm();
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Stopping", restartPending: true } });
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.restartPending]).toEqual(["Running", false]);
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(2);
    expect(fake.vm(vm.id).calls).toContain("stop");
  });

  it("drops the mark of a restart found Running (it finished, or never began its stop) without starting anything", async () => {
    const vm = await runningVm();
    await hangar.db.vm.update({ where: { id: vm.id }, data: { restartPending: true } });
    await hangar.reconciler.reconcileWatched();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.restartPending]).toEqual(["Running", false]);
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(1);
    expect(await hangar.db.event.count({ where: { vmId: vm.id, action: "restart" } })).toBe(0);
  });

  it("leaves a restart under way in this process alone, and clears its mark when it is done", async () => {
    const vm = await runningVm();
    fake.startDelayMs = 100;
    const restarting = hangar.lifecycle.restartVm(vm.id, 10, "t");
    await expect.poll(async () => (await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Starting");
    await hangar.reconciler.reconcileAll();
    await restarting;
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.restartPending]).toEqual(["Running", false]);
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(2);
    expect(await hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } })).toBe(0);
  });

  it("completes a pool release that Hangar's end cut short in its stop: the stop carried out, the VM deleted", async () => {
    const vm = await runningVm();
    // What a release leaves when the process dies during its stop: the row Stopping, the mark on.
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Stopping", releasePending: true } });
    await hangar.reconciler.reconcileAll();
    expect(await hangar.db.vm.findUnique({ where: { id: vm.id } })).toBeNull();
    expect(fake.vm(vm.id).calls).toEqual(expect.arrayContaining(["stop", "delete"]));
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmName: "r-1", action: "pool-released" } });
    expect(event).toMatchObject({
      actor: "system",
      ok: true,
      message: expect.stringMatching(/r-1 released \(a release interrupted by a restart of Hangar was completed\)/),
    });
  });

  it("completes a release cut short before its stop began, and keeps a VM protected since", async () => {
    const vm = await runningVm();
    await hangar.db.vm.update({ where: { id: vm.id }, data: { releasePending: true } });
    await hangar.reconciler.reconcileWatched();
    expect(await hangar.db.vm.findUnique({ where: { id: vm.id } })).toBeNull();

    const kept = await createVm(hangar, { name: "r-2", imageId: vm.imageId, cpus: 1, memoryMiB: 128 }, "t");
    await hangar.db.vm.update({ where: { id: kept.id }, data: { releasePending: true, protection: true } });
    await hangar.reconciler.reconcileAll();
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: kept.id } });
    expect([row.state, row.releasePending]).toEqual(["Stopped", false]);
  });
});

describe("reconciler loop", () => {
  let t: TestHangar;
  const fake = new FakeDriver();
  /** Which VMs' qemu the reconciler looked for. */
  const asked: string[] = [];

  beforeEach(async () => {
    t = await createTestHangar({
      driverFor: (vmId) => {
        const manager = fake.managerFor(vmId);
        return {
          ...manager,
          running: () => {
            asked.push(vmId);
            return manager.running();
          },
        };
      },
    });
  });
  afterEach(() => t.cleanup());

  it("looks at every row at start-up, then only at rows whose qemu may run", async () => {
    const { hangar } = t;
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const stopped = await createVm(hangar, { name: "resting", imageId: image.id, cpus: 1, memoryMiB: 128 }, "t");
    const running = await createVm(hangar, { name: "busy", imageId: image.id, cpus: 1, memoryMiB: 128 }, "t");
    await hangar.lifecycle.startVm(running.id, "t");
    asked.length = 0;
    await hangar.reconciler.reconcileAll();
    expect([...asked].sort()).toEqual([stopped.id, running.id].sort());

    asked.length = 0;
    await hangar.reconciler.reconcileWatched();
    expect(asked).toEqual([running.id]);

    // A qemu that died is still noticed by the watched pass.
    fake.vm(running.id).running = false;
    await hangar.reconciler.reconcileWatched();
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: running.id } })).state).toBe("Stopped");
    asked.length = 0;
    await hangar.reconciler.reconcileWatched();
    expect(asked).toEqual([]);
  });
});
