// Lifecycle, reconciler and API together on the real qemu driver and the tiny guest.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshWhenReady } from "../testing/guest.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { QEMU_DIED } from "./reconcile.ts";
import { waitForState } from "./wait.ts";

let t: TestHangar;
let stopLoop: () => void = () => undefined;

beforeAll(async () => {
  t = await createTestHangar();
});
afterAll(async () => {
  stopLoop();
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

describe("a real VM through the API", () => {
  it("is created, started, reached over SSH, stopped and deleted", async () => {
    const api = await callerFor(t.hangar);
    const image = await tinyImage(t.hangar);
    const vm = await api.vm.create({ name: "real-one", imageId: image.id, cpus: 1, memoryMiB: 256, ports: [{ hostPort: 0, guestPort: 8080 }] });
    expect(vm.state).toBe("Stopped");
    expect(vm.actions).toEqual(["Start", "Delete"]);

    const running = await api.vm.start({ id: vm.id });
    expect(running.state).toBe("Running");
    expect(running.sshPort).toBeGreaterThan(0);
    expect(running.ports[0]?.boundPort).toBeGreaterThan(0);

    const driver = t.hangar.driverFor(vm.id);
    const hostname = await sshWhenReady(driver, running.sshPort ?? 0, ["hostname"]);
    expect(hostname.stdout.trim()).toBe("real-one");
    const exec = await t.hangar.lifecycle.instance(vm.id, "tester").exec("cat", "/run/instance-id");
    expect(exec.stdout.trim()).toBe(vm.id);
    expect(await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 120 })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
    // The tiny guest's agent sets the clock and reports no addresses: it says so at once.
    expect(await api.vm.addresses({ id: vm.id })).toMatchObject({ interfaces: null, detail: expect.stringMatching(/^No guest agent reports them/) });

    const stopped = await api.vm.stop({ id: vm.id, timeoutSec: 30 });
    expect(stopped.state).toBe("Stopped");
    expect(await driver.running()).toBe(false);

    await api.vm.delete({ id: vm.id });
    await expect(api.vm.get({ id: vm.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const { events } = await api.vm.events({ limit: 50 });
    expect(
      events
        .filter((e) => e.vmName === "real-one")
        .map((e) => `${e.action}:${e.toState}:${e.ok}`)
        .reverse(),
    ).toEqual(["create:Initial:true", "clone:Stopped:true", "start:Running:true", "ready:Running:true", "stop:Stopped:true", "delete:Deleted:true"]);
  });

  it("shows a VM whose qemu was killed with SIGKILL as Stopped, through the reconciler", async () => {
    const api = await callerFor(t.hangar);
    const image = await tinyImage(t.hangar);
    const vm = await api.vm.create({ name: "killed", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const running = await api.vm.start({ id: vm.id });
    stopLoop = t.hangar.reconciler.startLoop(500);

    process.kill(running.pid ?? 0, "SIGKILL");
    const killedAt = Date.now();
    await waitForState(t.hangar.lifecycle.instance(vm.id, "tester"), "Stopped", { intermediate: ["Running"], timeoutMs: 10_000, intervalMs: 100 });
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // The state is written a moment before its event.
    await expect.poll(() => t.hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } })).toBe(1);
    const event = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, actor: "reconciler" } });
    expect([event.fromState, event.toState]).toEqual(["Running", "Stopped"]);
    expect((await api.vm.get({ id: vm.id })).error).toBe(`The VM stopped: ${QEMU_DIED}.`);

    // Started again after the crash: a fresh qemu, not an adopted corpse; the reason is cleared.
    const again = await api.vm.start({ id: vm.id });
    expect(again.pid).not.toBe(running.pid);
    expect(again.error).toBeNull();
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
  });

  it("adopts a qemu that outlived a server restart instead of starting it twice", async () => {
    const api = await callerFor(t.hangar);
    const image = await tinyImage(t.hangar);
    const vm = await api.vm.create({ name: "survivor", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const running = await api.vm.start({ id: vm.id });
    // A crash between "qemu started" and "row written": the row still says Starting.
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting", sshPort: null } });

    const restarted = await createTestHangarOn(t);
    await restarted.reconciler.reconcileAll();
    const row = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect([row.state, row.pid, row.sshPort]).toEqual(["Running", running.pid, running.sshPort]);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
  });
});

/** A second set of services on the same state directory and database: a restarted server. */
async function createTestHangarOn(existing: TestHangar) {
  const { createHangar } = await import("../hangar.ts");
  return createHangar({ env: existing.env, db: existing.hangar.db });
}
