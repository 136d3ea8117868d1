import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { HostPortTakenError, HostToolMissingError, NotRunningError, SavedStateLoadError } from "../driver/manager.ts";
import { HangarError } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { cloneExistingVm, createVm } from "./inventory.ts";
import { resizeDisk } from "./disks.ts";
import { describeStop } from "./lifecycle.ts";
import { changeSnapshot } from "./snapshots.ts";

let t: TestHangar;
let hangar: Hangar;
let fake: FakeDriver;

beforeEach(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  hangar = t.hangar;
});
afterEach(() => t.cleanup());

async function image() {
  return hangar.db.image.create({ data: { name: "base", path: "/images/base.qcow2", status: "ready" } });
}

async function newVm(name = "vm-1") {
  return createVm(hangar, { name, imageId: (await image()).id, cpus: 1, memoryMiB: 256 }, "tester");
}

async function stateOf(id: string) {
  return (await hangar.db.vm.findUniqueOrThrow({ where: { id } })).state;
}

async function codeOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return error instanceof HangarError ? error.code : String(error);
}

describe("a stop's event", () => {
  it.each([
    [{ how: "powered-off", afterMs: 2345 }, 30_000, "Powered off after 2.3 s"],
    [{ how: "quit", afterMs: 30_100 }, 30_000, "Forced: the guest did not power off within 30.0 s, so qemu was told to quit"],
    [{ how: "killed", afterMs: 33_000 }, 30_000, "Forced: the guest did not power off within 30.0 s and qemu did not quit, so it was killed"],
    // Given no time, the guest is not the one that failed: the stop was meant to be forced.
    [{ how: "quit", afterMs: 40 }, 0, "Forced: the stop gave the guest no time to power off, so qemu was told to quit"],
    [{ how: "killed", afterMs: 3040 }, 0, "Forced: the stop gave the guest no time to power off and qemu did not quit, so it was killed"],
  ] as const)("%j with %i ms to power off reads %j", (outcome, timeoutMs, message) => {
    expect(describeStop(outcome, timeoutMs)).toBe(message);
  });
});

describe("lifecycle", () => {
  it("clones a new VM to Stopped and records create and clone events", async () => {
    const vm = await newVm();
    expect(vm.state).toBe("Stopped");
    expect(fake.vm(vm.id).calls).toEqual(["create"]);
    const events = await hangar.db.event.findMany({ where: { vmId: vm.id }, orderBy: { createdAt: "asc" } });
    expect(events.map((e) => [e.action, e.fromState, e.toState, e.ok, e.actor])).toEqual([
      ["create", null, "Initial", true, "tester"],
      ["clone", "Initial", "Stopped", true, "tester"],
    ]);
  });

  it("leaves a failed clone in Initial with the error, and can clone again or delete it", async () => {
    fake.failNext.set("create", new Error("qemu-img: disk full"));
    const error = await newVm().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HangarError);
    const row = await hangar.db.vm.findFirstOrThrow({ where: { name: "vm-1" } });
    expect(row.state).toBe("Initial");
    expect(row.error).toContain("disk full");
    await hangar.lifecycle.cloneVm(row.id, "tester");
    expect(await stateOf(row.id)).toBe("Stopped");
  });

  it("boots with the image's firmware", async () => {
    const uefi = await hangar.db.image.create({ data: { name: "uefi", path: "/images/uefi.qcow2", status: "ready", firmware: "uefi" } });
    const vm = await createVm(hangar, { name: "vm-uefi", imageId: uefi.id, cpus: 1, memoryMiB: 256 }, "tester");
    await hangar.lifecycle.startVm(vm.id, "tester");
    expect(fake.vm(vm.id).lastStart).toMatchObject({ firmware: "uefi" });
  });

  it("starts, stops and deletes, writing each transition", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "tester");
    let row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.sshPort, row.pid]).toEqual(["Running", 40000 + fake.vm(vm.id).pid, fake.vm(vm.id).pid]);
    expect(fake.vm(vm.id).lastStart).toMatchObject({ hostname: "vm-1", instanceId: vm.id, cpus: 1, memoryMiB: 256, firmware: "bios" });

    await hangar.lifecycle.stopVm(vm.id, 1000, "tester");
    row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.pid]).toEqual(["Stopped", null]);

    await hangar.lifecycle.deleteVm(vm.id, "tester");
    expect(await hangar.db.vm.findUnique({ where: { id: vm.id } })).toBeNull();
    const last = await hangar.db.event.findFirstOrThrow({ where: { vmName: "vm-1", action: "delete" } });
    expect([last.fromState, last.toState, last.ok, last.vmId]).toEqual(["Stopped", "Deleted", true, null]);
  });

  it("lets exactly one of two concurrent starts win; the other gets VM_BUSY", async () => {
    const vm = await newVm();
    fake.startDelayMs = 50;
    const results = await Promise.allSettled([hangar.lifecycle.startVm(vm.id, "a"), hangar.lifecycle.startVm(vm.id, "b")]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.reason).toBeInstanceOf(HangarError);
    expect((failed[0]?.reason as HangarError).code).toBe("VM_BUSY");
    expect(fake.vm(vm.id).calls.filter((c) => c === "start")).toHaveLength(1);
    expect(await stateOf(vm.id)).toBe("Running");
  });

  it("of ten concurrent starts, one transition happens", async () => {
    const vm = await newVm();
    fake.startDelayMs = 20;
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => hangar.lifecycle.startVm(vm.id, `c${i}`)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const starts = await hangar.db.event.count({ where: { vmId: vm.id, action: "start" } });
    expect(starts).toBe(1);
  });

  it("refuses actions the state table does not allow, saying what is allowed", async () => {
    const other = await newVm("vm-2");
    await hangar.lifecycle.startVm(other.id, "t");
    const refused = await hangar.lifecycle.startVm(other.id, "t").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(HangarError);
    expect((refused as HangarError).code).toBe("VM_INVALID_TRANSITION");
    expect((refused as HangarError).message).toBe('Cannot start VM "vm-2" while it is Running. Allowed now: Stop, Suspend.');
    expect(await codeOf(hangar.lifecycle.deleteVm(other.id, "t"))).toBe("VM_INVALID_TRANSITION");
    expect(await codeOf(hangar.lifecycle.startVm("nosuchvm", "t"))).toBe("NOT_FOUND");
  });

  it("leaves a VM whose start failed Stopped, with the error text", async () => {
    const vm = await newVm();
    fake.failNext.set("start", new Error("qemu: could not open disk"));
    expect(await codeOf(hangar.lifecycle.startVm(vm.id, "t"))).toBe("DRIVER_FAILED");
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Stopped");
    expect(row.error).toContain("could not open disk");
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "start" } });
    expect([event.ok, event.toState]).toEqual([false, "Stopped"]);
  });

  it("says what the host lacks when the start needs a missing tool (UEFI firmware)", async () => {
    const vm = await newVm();
    fake.failNext.set("start", new HostToolMissingError("UEFI firmware (OVMF) is not installed on this host; install the ovmf package or use BIOS firmware."));
    expect(await codeOf(hangar.lifecycle.startVm(vm.id, "t"))).toBe("HOST_TOOL_MISSING");
    expect(await stateOf(vm.id)).toBe("Stopped");
  });

  it("refuses a start whose fixed host port another program holds with PORT_IN_USE, and keeps that sentence, not qemu's words", async () => {
    const vm = await newVm("b-port");
    fake.failNext.set("start", new HostPortTakenError(3401, 80));
    const error = await hangar.lifecycle.startVm(vm.id, "t").then(
      () => undefined,
      (e: unknown) => e,
    );
    const sentence = "Host port 3401 is taken on this host; free it, or forward guest port 80 on another host port (0 for any free one).";
    expect(error).toBeInstanceOf(HangarError);
    expect(error).toMatchObject({ code: "PORT_IN_USE", message: `Starting VM "b-port" failed: ${sentence}` });
    // What the VM keeps is read from every host: it names this one.
    const kept = `Start failed: Host port 3401 is taken on host ${hangar.hosts.name}; free it, or forward guest port 80 on another host port (0 for any free one).`;
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.error]).toEqual(["Stopped", kept]);
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "start" } });
    expect([event.ok, event.message]).toEqual([false, kept]);
  });

  it("marks a VM ErrorUnknown when a stop fails and qemu still runs; delete then cleans up", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    fake.failNext.set("stop", new Error("QMP hung"));
    expect(await codeOf(hangar.lifecycle.stopVm(vm.id, 100, "t"))).toBe("DRIVER_FAILED");
    expect(await stateOf(vm.id)).toBe("ErrorUnknown");
    await hangar.lifecycle.deleteVm(vm.id, "t");
    expect(fake.vm(vm.id)).toMatchObject({ running: false, exists: false });
  });

  it("treats Stop on a Stopped VM as done", async () => {
    const vm = await newVm();
    await hangar.lifecycle.stopVm(vm.id, 100, "t");
    expect(await stateOf(vm.id)).toBe("Stopped");
    expect(fake.vm(vm.id).calls).not.toContain("stop");
  });

  it("publishes every state change on the bus", async () => {
    const seen: string[] = [];
    hangar.bus.subscribe((change) => seen.push(change.state));
    // The guest stays booting: the ready event, published too, is readiness.test.ts's.
    fake.cloudInitStatus = '{"status": "running"}';
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    await hangar.lifecycle.stopVm(vm.id, 100, "t");
    await hangar.lifecycle.deleteVm(vm.id, "t");
    expect(seen).toEqual(["Initial", "Cloning", "Stopped", "Starting", "Running", "Stopping", "Stopped", "Deleting", "Deleted", "Gone"]);
  });

  it("suspends a Running VM and resumes it on the machine type it ran with", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    await hangar.lifecycle.suspendVm(vm.id, "t");
    expect(await stateOf(vm.id)).toBe("Suspended");
    await hangar.lifecycle.suspendVm(vm.id, "t");
    expect(fake.vm(vm.id).calls.filter((c) => c === "suspend")).toHaveLength(1);
    await hangar.lifecycle.startVm(vm.id, "t");
    expect(await stateOf(vm.id)).toBe("Running");
    expect(fake.vm(vm.id).lastStart).toMatchObject({ resume: true, machine: "pc-q35-fake" });
    // After a resume the guest's clock is set (in the background) through its agent, if any.
    await expect.poll(() => fake.vm(vm.id).calls).toEqual(["create", "start", "suspend", "resume", "clock"]);
    await expect.poll(async () => (await hangar.db.event.findFirst({ where: { vmId: vm.id, action: "clock" } }))?.message).toMatch(/No guest agent answered/);
  });

  it("keeps the saved state of a resume that failed for another reason (qemu killed): the VM is Suspended again", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    await hangar.lifecycle.suspendVm(vm.id, "t");
    // The driver's word for a qemu gone as it started (its QMP connection broke, and no process is left).
    fake.failNext.set("start", new NotRunningError("qemu ended as it started"));
    expect(await hangar.lifecycle.startVm(vm.id, "t").catch((e: unknown) => e)).toMatchObject({
      code: "NOT_RUNNING",
      message: 'Starting VM "vm-1" failed: qemu ended as it started. Its saved state is kept; start it again to resume it.',
    });
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.error]).toEqual(["Suspended", "Start failed: qemu ended as it started. The saved state is kept; start the VM again to resume it."]);
    expect(fake.vm(vm.id)).toMatchObject({ running: false, saved: true });
    await hangar.lifecycle.startVm(vm.id, "t");
    expect(fake.vm(vm.id).lastStart).toMatchObject({ resume: true });
  });

  it("says the guest had resumed, not that its state did not load, when qemu is killed after the resume loaded and dropped that state", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    await hangar.lifecycle.suspendVm(vm.id, "t");
    // The state loaded and was deleted from the disk (delvm), then qemu was killed before the start returned.
    fake.vm(vm.id).saved = false;
    fake.failNext.set("start", new Error("QMP connection failed: read ECONNRESET"));
    expect(await codeOf(hangar.lifecycle.startVm(vm.id, "t"))).toBe("DRIVER_FAILED");
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Stopped");
    expect(row.error).toMatch(/^qemu ended after the guest had resumed from its saved state, so what was in its memory is lost; .*read ECONNRESET/);
  });

  it("stops a VM whose qemu ends during a suspend, saying its memory is lost, instead of leaving it unknown", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    // qemu is killed while it saves: the save's QMP connection breaks.
    fake.suspendDelayMs = 200;
    fake.failNext.set("suspend", new Error("QMP connection failed: read ECONNRESET"));
    const suspending = codeOf(hangar.lifecycle.suspendVm(vm.id, "t"));
    await sleep(50);
    Object.assign(fake.vm(vm.id), { running: false, pid: 0 });
    // Not the host's failure (a 500): the VM was ended under the call.
    expect(await suspending).toBe("NOT_RUNNING");
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Stopped");
    expect(row.error).toMatch(/qemu ended during the save .*what was in its memory is lost/);
  });

  it("says a start failed because its qemu was ended as it started, not that the host failed", async () => {
    const vm = await newVm();
    fake.failNext.set("start", new NotRunningError("qemu was ended by SIGKILL as it started"));
    expect(await hangar.lifecycle.startVm(vm.id, "t").catch((e: unknown) => e)).toMatchObject({
      code: "NOT_RUNNING",
      message: 'Starting VM "vm-1" failed: qemu was ended by SIGKILL as it started, so the VM is stopped; start it again.',
    });
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).toMatchObject({ state: "Stopped", pid: null });
    // A qemu that fails on its own is the host's failure.
    fake.failNext.set("start", new Error("qemu failed to start (exit code 1); the server log has its output"));
    expect(await codeOf(hangar.lifecycle.startVm(vm.id, "t"))).toBe("DRIVER_FAILED");
    await hangar.lifecycle.startVm(vm.id, "t");
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Running");
  });

  it("says a running VM's snapshot or disk growth failed because its qemu ended, not that the host failed", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    const killed = () => Object.assign(fake.vm(vm.id), { running: false, pid: 0 });

    fake.failNext.set("createSnapshot", new Error("QMP connection failed: read ECONNRESET"));
    fake.snapshotDelayMs = 100;
    const snapshot = changeSnapshot(hangar, { id: vm.id, name: "s1", action: "create" }, "t").catch((e: unknown) => e);
    await sleep(30);
    killed();
    const refused = await snapshot;
    expect(refused).toMatchObject({
      code: "NOT_RUNNING",
      message: 'VM "vm-1" stopped during the snapshot create of "s1" (its qemu ended); list its snapshots to see where it stands, then start it again.',
    });
    const event = await hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "snapshot-create" } });
    expect(event).toMatchObject({ ok: false, message: "Snapshot s1: the VM's qemu ended during it" });

    // The same qemu failure with qemu still alive is the host's.
    fake.failNext.set("createSnapshot", new Error("savevm: No space left on device"));
    Object.assign(fake.vm(vm.id), { running: true });
    expect(await codeOf(changeSnapshot(hangar, { id: vm.id, name: "s2", action: "create" }, "t"))).toBe("DRIVER_FAILED");

    fake.failNext.set("resizeDisk", new Error("QMP connection failed: read ECONNRESET"));
    killed();
    expect(await resizeDisk(hangar, { id: vm.id, diskGiB: 40 }, "t").catch((e: unknown) => e)).toMatchObject({
      code: "NOT_RUNNING",
      message: expect.stringMatching(/^VM "vm-1" stopped while its disk grew \(its qemu ended\)/),
    });
  });

  it("leaves a VM whose saved state fails to load Stopped, and drops that state", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    await hangar.lifecycle.suspendVm(vm.id, "t");
    fake.failNext.set("start", new SavedStateLoadError("qemu: Missing section footer"));
    expect(await codeOf(hangar.lifecycle.startVm(vm.id, "t"))).toBe("DRIVER_FAILED");
    const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Stopped");
    expect(row.error).toMatch(/saved state did not load.*Missing section footer/);
    expect(fake.vm(vm.id)).toMatchObject({ running: false, saved: false });
  });

  it("marks a failed suspend ErrorUnknown, which the reconciler turns back to Running while qemu lives", async () => {
    const vm = await newVm();
    await hangar.lifecycle.startVm(vm.id, "t");
    fake.failNext.set("suspend", new Error("savevm failed: disk full"));
    expect(await codeOf(hangar.lifecycle.suspendVm(vm.id, "t"))).toBe("DRIVER_FAILED");
    expect(await stateOf(vm.id)).toBe("ErrorUnknown");
    await hangar.reconciler.reconcileAll();
    expect(await stateOf(vm.id)).toBe("Running");
  });

  it("clones a Stopped VM into a new one with cloneInfo, and refuses a Running source", async () => {
    const source = await newVm("src");
    const clone = await cloneExistingVm(hangar, { id: source.id, name: "copy" }, "t");
    expect(clone.state).toBe("Stopped");
    expect(fake.vm(clone.id).clonedFrom).toBe(source.id);
    expect(JSON.parse(clone.cloneInfo ?? "")).toEqual({ sourceVmId: source.id, sourceName: "src" });
    expect(await hangar.lifecycle.instance(clone.id, "t").properties()).toMatchObject({ cloneInfo: { sourceVmId: source.id } });
    await hangar.lifecycle.startVm(source.id, "t");
    expect(await codeOf(cloneExistingVm(hangar, { id: source.id, name: "copy-2" }, "t"))).toBe("VM_INVALID_TRANSITION");
  });
});
