// Start at boot: once per boot of the machine, this host's VMs marked autostart start
// (Suspended ones resume); a Hangar restart on the same boot starts none; a start that
// fails is an event, and the others still start. Fake driver, real router and database.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { AUTOSTART_ACTOR, SHUTDOWN_ACTOR, machineBootId, shutdownGroups, startAtBoot, stopForShutdown } from "./autostart.ts";

let t: TestHangar;
let fake: FakeDriver;
let api: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;
const spec = { cpus: 1, memoryMiB: 128 };

beforeAll(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  api = await callerFor(t.hangar);
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
});
afterAll(() => t.cleanup());

const stateOf = async (id: string) => (await t.hangar.db.vm.findUniqueOrThrow({ where: { id } })).state;

describe("start at boot", () => {
  it("starts the marked VMs once per boot, resuming a suspended one, and leaves the rest", async () => {
    const web = await api.vm.create({ name: "boot-web", imageId, ...spec, autostart: true });
    const db = await api.vm.create({ name: "boot-db", imageId, ...spec });
    await api.vm.setAutostart({ id: db.id, autostart: true });
    const scratch = await api.vm.create({ name: "boot-scratch", imageId, ...spec });
    await api.vm.start({ id: db.id });
    await api.vm.suspend({ id: db.id });
    // A pool starts its own waiting members.
    const pool = await t.hangar.db.pool.create({ data: { name: "boot-pool", imageId, ...spec, size: 0, staging: "Stopped" } });
    const member = await api.vm.create({ name: "boot-member", imageId, ...spec, autostart: true });
    await t.hangar.db.vm.update({ where: { id: member.id }, data: { poolId: pool.id } });

    expect(await startAtBoot(t.hangar, "boot-1")).toEqual({ started: ["boot-db", "boot-web"], failed: [] });
    expect([await stateOf(web.id), await stateOf(db.id), await stateOf(scratch.id), await stateOf(member.id)]).toEqual([
      "Running",
      "Running",
      "Stopped",
      "Stopped",
    ]);
    expect(fake.vm(db.id).lastStart).toMatchObject({ resume: true });
    const starts = (await api.vm.events({ vmId: web.id, limit: 50 })).events.filter((e) => e.action === "start");
    expect(starts).toMatchObject([{ actor: AUTOSTART_ACTOR, ok: true }]);

    // Hangar restarted on the same boot: a VM stopped since stays stopped.
    await api.vm.stop({ id: web.id, timeoutSec: 0 });
    expect(await startAtBoot(t.hangar, "boot-1")).toEqual({ started: [], failed: [] });
    expect(await stateOf(web.id)).toBe("Stopped");
    // Without a boot id (no /proc), nothing is started.
    expect(await startAtBoot(t.hangar, undefined)).toEqual({ started: [], failed: [] });
    await api.vm.stop({ id: db.id, timeoutSec: 0 });
  });

  it("starts them in their order, those without one last, by name on a tie, each followed by its delay", async () => {
    const made = async (name: string, order: number | null, delaySec = 0) => {
      const vm = await api.vm.create({ name, imageId, ...spec });
      expect(await api.vm.setAutostart({ id: vm.id, autostart: true, order, delaySec })).toEqual({ autostart: true, order, delaySec });
      return vm;
    };
    const vms = [
      await made("order-z", 1, 30),
      await made("order-a", null),
      await made("order-m", 2, 5),
      await made("order-b", 1),
      await made("order-c", null, 9),
    ];
    const waits: number[] = [];
    const { started } = await startAtBoot(t.hangar, "boot-order", async (ms) => void waits.push(ms));
    // The first test's boot-db and boot-web (marked, without an order) start again on this boot too.
    expect(started).toEqual(["order-b", "order-z", "order-m", "boot-db", "boot-web", "order-a", "order-c"]);
    // order-c comes last: nothing waits for its delay.
    expect(waits).toEqual([30_000, 5_000]);
    const [event] = (await api.vm.events({ vmId: vms[0]?.id, limit: 50 })).events.filter((e) => e.action === "autostart");
    expect(event?.message).toBe("Starts when its host boots (order 1, then 30 s before the next)");
    // Changing only whether it starts keeps its place.
    expect(await api.vm.setAutostart({ id: vms[0]?.id ?? "", autostart: false })).toEqual({ autostart: false, order: 1, delaySec: 30 });
    // Gone again, so the tests after this start none of them.
    for (const vm of vms) {
      await api.vm.stop({ id: vm.id, timeoutSec: 0 });
      await api.vm.delete({ id: vm.id });
    }
  });

  it("records a start that fails and starts the others; the boot counts as done", async () => {
    for (const name of ["boot-db", "boot-web"]) {
      const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { name } });
      expect(await api.vm.setAutostart({ id: vm.id, autostart: false })).toEqual({ autostart: false, order: null, delaySec: 0 });
    }
    const broken = await api.vm.create({ name: "fail-a", imageId, ...spec, autostart: true });
    const fine = await api.vm.create({ name: "fail-b", imageId, ...spec, autostart: true });
    fake.failNext.set("start", new Error("qemu failed to start: could not open disk image"));
    expect(await startAtBoot(t.hangar, "boot-2")).toEqual({ started: ["fail-b"], failed: ["fail-a"] });
    expect([await stateOf(broken.id), await stateOf(fine.id)]).toEqual(["Stopped", "Running"]);
    const [event] = (await api.vm.events({ vmId: broken.id, limit: 1 })).events;
    expect(event).toMatchObject({
      action: "autostart",
      actor: AUTOSTART_ACTOR,
      ok: false,
      message: 'Not started at boot: Starting VM "fail-a" failed: qemu failed to start: could not open disk image',
    });
    // Not tried again on the same boot.
    expect(await startAtBoot(t.hangar, "boot-2")).toEqual({ started: [], failed: [] });
    await api.vm.stop({ id: fine.id, timeoutSec: 0 });
  });

  it("is kept by a clone, with its order and delay, and refused to a viewer", async () => {
    const source = await api.vm.create({ name: "marked", imageId, ...spec, autostart: true });
    await api.vm.setAutostart({ id: source.id, autostart: true, order: 3, delaySec: 10 });
    const copy = await api.vm.clone({ id: source.id, name: "marked-copy" });
    expect(await api.vm.get({ id: copy.id })).toMatchObject({ autostart: true, autostartOrder: 3, autostartDelaySec: 10 });
    const viewer = await callerFor(t.hangar, "viewer");
    await expect(viewer.vm.setAutostart({ id: source.id, autostart: false })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("reads the machine's boot id, and none where the file is missing", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "hangar-boot-"));
    try {
      writeFileSync(path.join(dir, "boot_id"), "0f1e2d3c-aaaa-bbbb-cccc-123456789abc\n");
      expect(await machineBootId(path.join(dir, "boot_id"))).toBe("0f1e2d3c-aaaa-bbbb-cccc-123456789abc");
      expect(await machineBootId(path.join(dir, "missing"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stop at machine shutdown", () => {
  it("groups VMs in the reverse of the start order: those without one first, then the highest order down", () => {
    const vm = (name: string, autostartOrder: number | null) => ({ name, autostartOrder });
    const groups = shutdownGroups([vm("db", 1), vm("web-1", 3), vm("scratch", null), vm("web-2", 3), vm("cache", 2), vm("tmp", null)]);
    expect(groups.map((group) => group.map((v) => v.name))).toEqual([["scratch", "tmp"], ["web-1", "web-2"], ["cache"], ["db"]]);
    expect(shutdownGroups([])).toEqual([]);
  });

  it("stops this host's running VMs group by group as host shutdown, and leaves a pool's waiting members", async () => {
    // The earlier tests' VMs that still run.
    for (const vm of await t.hangar.db.vm.findMany({ where: { state: "Running" } })) await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    const started = async (name: string, order: number | null) => {
      const vm = await api.vm.create({ name, imageId, ...spec });
      if (order !== null) await api.vm.setAutostart({ id: vm.id, autostart: true, order });
      await api.vm.start({ id: vm.id });
      return vm;
    };
    const app = await started("down-app", null);
    const db = await started("down-db", 1);
    const web = await started("down-web", 2);
    const idle = await api.vm.create({ name: "down-idle", imageId, ...spec });
    const pool = await t.hangar.db.pool.create({ data: { name: "down-pool", imageId, ...spec, size: 0, staging: "Running" } });
    const member = await started("down-member", null);
    await t.hangar.db.vm.update({ where: { id: member.id }, data: { poolId: pool.id } });

    const { stopped, failed } = await stopForShutdown(t.hangar, 5000);
    expect({ stopped, failed }).toEqual({ stopped: ["down-app", "down-web", "down-db"], failed: [] });
    expect(await Promise.all([app, db, web, idle, member].map((vm) => stateOf(vm.id)))).toEqual(["Stopped", "Stopped", "Stopped", "Stopped", "Running"]);
    const [stop] = (await api.vm.events({ vmId: db.id, limit: 50 })).events.filter((e) => e.action === "stop");
    expect(stop).toMatchObject({ actor: SHUTDOWN_ACTOR, ok: true });
    // The power button first, then the guest's time to answer it.
    expect(fake.vm(db.id).lastStopTimeoutMs).toBe(5000);
  });
});
