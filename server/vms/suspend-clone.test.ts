// Suspend/resume, snapshots and clones on the real qemu driver with the tiny guest.
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vmFiles } from "../driver/qemu/paths.ts";
import { sshWhenReady } from "../testing/guest.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;
let api: Awaited<ReturnType<typeof callerFor>>;

beforeAll(async () => {
  t = await createTestHangar();
  api = await callerFor(t.hangar);
});
afterAll(async () => {
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

async function sh(vmId: string, script: string): Promise<string> {
  const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
  // As root: /data belongs to root.
  const result = await sshWhenReady(t.hangar.driverFor(vmId), vm.sshPort ?? 0, ["sh", "-c", script], 90_000, { asRoot: true });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.trim();
}

async function newRunningVm(name: string) {
  const image = await tinyImage(t.hangar);
  const vm = await api.vm.create({ name, imageId: image.id, cpus: 1, memoryMiB: 256 });
  await api.vm.start({ id: vm.id });
  return vm;
}

describe("suspend and resume", () => {
  it("keeps a file in the guest's tmpfs across suspend, frees the process, and resumes", async () => {
    const vm = await newRunningVm("sus-one");
    const token = randomBytes(8).toString("hex");
    await sh(vm.id, `echo ${token} > /tmp/marker`);

    const suspended = await api.vm.suspend({ id: vm.id });
    expect(suspended.state).toBe("Suspended");
    expect(suspended.actions).toEqual(["Start", "Delete"]);
    expect(await t.hangar.driverFor(vm.id).running()).toBe(false);
    const machine = (await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).machine;
    expect(machine).toMatch(/^pc-q35-/);
    // Long enough suspended that a clock left standing would be seconds behind.
    await new Promise((resolve) => setTimeout(resolve, 4000));

    const resumed = await api.vm.start({ id: vm.id });
    expect(resumed.state).toBe("Running");
    expect(await sh(vm.id, "cat /tmp/marker")).toBe(token);
    // The tiny guest's agent took the time Hangar sent: its clock is the host's again.
    await expect
      .poll(async () => (await api.vm.events({ vmId: vm.id, limit: 20 })).events.find((e) => e.action === "clock")?.ok, { timeout: 15_000 })
      .toBe(true);
    expect(Math.abs(Number(await sh(vm.id, "date +%s")) - Date.now() / 1000)).toBeLessThan(3);
    // The ready condition and the guest's clock are recorded on their own time, in between.
    const events = (await api.vm.events({ vmId: vm.id, limit: 20 })).events
      .filter((e) => e.action !== "ready" && e.action !== "clock")
      .map((e) => `${e.action}:${e.toState}`);
    expect(events.slice(0, 2)).toEqual(["start:Running", "suspend:Suspended"]);
    expect((await t.hangar.driverFor(vm.id).listSnapshots()).map((s) => s.name)).toEqual([]);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
  });

  it("leaves a VM whose saved state is gone Stopped with the reason, never half-running", async () => {
    const vm = await newRunningVm("sus-two");
    await sh(vm.id, "true");
    await api.vm.suspend({ id: vm.id });
    await execa("qemu-img", ["snapshot", "-d", "hangar-suspend", "--", vmFiles(t.env.stateDir, vm.id).disk]);

    await expect(api.vm.start({ id: vm.id })).rejects.toMatchObject({ code: "INTERNAL_SERVER_ERROR" });
    const row = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    expect(row.state).toBe("Stopped");
    expect(row.error).toMatch(/saved state did not load/);
    expect(await t.hangar.driverFor(vm.id).running()).toBe(false);
    // Stopped now: a plain start boots it afresh.
    await api.vm.start({ id: vm.id });
    expect(await sh(vm.id, "echo up")).toBe("up");
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
  });
});

describe("snapshots and clones", () => {
  it("reverts a running VM to a live snapshot, a stopped one to a disk snapshot, clones it and makes an image of it", async () => {
    const vm = await newRunningVm("snap-src");
    const hostKey = (id: string) => sh(id, "dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | grep ^ssh-ed25519");
    const firstKey = await hostKey(vm.id);
    await sh(vm.id, "echo one > /data/file && sync");
    await api.snapshot.create({ id: vm.id, name: "live-1" });
    await sh(vm.id, "echo two > /data/file && sync");
    // Long enough after the snapshot that a clock brought back with it would be seconds behind.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await api.snapshot.revert({ id: vm.id, name: "live-1" });
    expect(await sh(vm.id, "cat /data/file")).toBe("one");
    expect(Math.abs(Number(await sh(vm.id, "date +%s")) - Date.now() / 1000)).toBeLessThan(3);
    expect((await api.vm.events({ vmId: vm.id, limit: 1 })).events[0]).toMatchObject({
      action: "snapshot-revert",
      message: expect.stringMatching(/guest clock set to the host's$/),
    });
    const live = await api.snapshot.list({ id: vm.id });
    expect(live.map((s) => s.name)).toEqual(["live-1"]);
    expect(live[0]?.vmStateBytes).toBeGreaterThan(0);
    await expect(api.snapshot.create({ id: vm.id, name: "live-1" })).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(api.snapshot.revert({ id: vm.id, name: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });

    await api.vm.stop({ id: vm.id, timeoutSec: 30 });
    await api.snapshot.create({ id: vm.id, name: "disk-1" });
    await api.snapshot.delete({ id: vm.id, name: "live-1" });
    await api.vm.start({ id: vm.id });
    // The guest's SSH host key is the one it had: a client that remembers it trusts it again.
    expect(await hostKey(vm.id)).toBe(firstKey);
    await sh(vm.id, "echo three > /data/file && sync");
    await api.vm.stop({ id: vm.id, timeoutSec: 30 });
    await api.snapshot.revert({ id: vm.id, name: "disk-1" });

    const clone = await api.vm.clone({ id: vm.id, name: "snap-clone" });
    expect(clone.state).toBe("Stopped");
    expect(JSON.parse(clone.cloneInfo ?? "{}")).toEqual({ sourceVmId: vm.id, sourceName: "snap-src" });
    // The source's snapshots hold its disk and memory: a clone starts with none.
    expect((await api.snapshot.list({ id: vm.id })).map((s) => s.name)).toEqual(["disk-1"]);
    expect(await api.snapshot.list({ id: clone.id })).toEqual([]);
    await api.vm.start({ id: clone.id });
    expect(await sh(clone.id, "hostname; cat /run/instance-id /data/file")).toBe(`snap-clone\n${clone.id}\none`);
    const [sourceKey, cloneKey] = await Promise.all([t.hangar.driverFor(vm.id).identity(), t.hangar.driverFor(clone.id).identity()]);
    expect(cloneKey.publicKey).not.toBe(sourceKey.publicKey);
    // A clone is another instance: it makes its own host key.
    expect(await hostKey(clone.id)).not.toBe(firstKey);

    // An image of the source's disk as it is now: its files, none of its snapshots.
    const image = await api.vm.publish({ id: vm.id, name: "snap-image" });
    const snapshots = await execa("qemu-img", ["snapshot", "-l", "-U", "--", image.path]);
    expect(snapshots.stdout).toBe("");
    const child = await api.vm.create({ name: "from-image", imageId: image.id, cpus: 1, memoryMiB: 256 });
    await api.vm.start({ id: child.id });
    expect(await sh(child.id, "hostname; cat /data/file")).toBe("from-image\none");
    await api.vm.stop({ id: child.id, timeoutSec: 0 });
    await api.vm.delete({ id: child.id });
    await api.image.delete({ id: image.id });

    await api.vm.start({ id: vm.id });
    expect(await sh(vm.id, "cat /data/file")).toBe("one");
    for (const id of [vm.id, clone.id]) {
      await api.vm.stop({ id, timeoutSec: 0 });
      await api.vm.delete({ id });
    }
  });

  it("refuses to clone a running VM", async () => {
    const vm = await newRunningVm("clone-busy");
    await expect(api.vm.clone({ id: vm.id, name: "clone-of-busy" })).rejects.toMatchObject({ code: "CONFLICT" });
    expect(await t.hangar.db.vm.findUnique({ where: { name: "clone-of-busy" } })).toBeNull();
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
  });
});
