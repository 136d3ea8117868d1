// Pool semantics on a fake driver: sizes, concurrent acquires, release, close, failures.
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NotRunningError } from "../driver/manager.ts";
import { HangarError } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { CLOUD_INIT_DONE, FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { setAutostart } from "../vms/autostart.ts";
import type { VmChange } from "../vms/bus.ts";
import { renameVm, setProtection } from "../vms/inventory.ts";
import { resizeVm } from "../vms/resources.ts";
import type { StagingState } from "./pool.ts";

let t: TestHangar;
let hangar: Hangar;
let fake: FakeDriver;

beforeEach(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor, pool: { backoffMs: { first: 10, max: 40 }, readyTimeoutMs: 1000, refillDelayMs: 1000 } });
  hangar = t.hangar;
});
afterEach(async () => {
  await hangar.pools.close();
  await t.cleanup();
});

async function newPool(size: number, staging: StagingState = "Suspended") {
  const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
  const pool = await hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size, staging }, "tester");
  await hangar.pools.kick(pool.id);
  return pool;
}

const members = (poolId: string) => hangar.db.vm.findMany({ where: { poolId } });

describe("pools", () => {
  it.each(["Running", "Suspended", "Stopped"] as const)("fills to its size with members %s", async (staging) => {
    const pool = await newPool(3, staging);
    const vms = await members(pool.id);
    expect(vms.map((vm) => vm.state)).toEqual([staging, staging, staging]);
    expect(vms.every((vm) => vm.name.startsWith("warm-"))).toBe(true);
    const [listed] = await hangar.pools.listPools();
    expect(listed).toMatchObject({ name: "warm", ready: 3, size: 3 });
    // Members that wait suspended boot with their memory in a file (a suspend then saves the devices alone).
    expect(vms.map((vm) => fake.vm(vm.id).lastStart?.memoryFile === true)).toEqual(Array(3).fill(staging === "Suspended"));
  });

  it("boots an acquired member's next fresh start with ordinary memory", async () => {
    const pool = await newPool(1);
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    expect(fake.vm(got.vmId).lastStart).toMatchObject({ resume: true });
    await hangar.lifecycle.stopVm(got.vmId, 0, "svc");
    await hangar.lifecycle.startVm(got.vmId, "svc");
    expect(fake.vm(got.vmId).lastStart).toMatchObject({ memoryFile: false });
  });

  it("keeps a waiting Stopped member's name, CPUs, memory, start at boot and protection the pool's; once acquired, its holder may change them", async () => {
    const pool = await newPool(1, "Stopped");
    const [waiting] = await members(pool.id);
    const refused = await resizeVm(hangar, { id: waiting?.id ?? "", cpus: 2 }, "svc").catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: "INVALID_INPUT",
      message: `VM "${waiting?.name}" waits in pool "warm", which gives its VMs their CPUs and memory; acquire it first.`,
    });
    const unmarked = await setAutostart(hangar, { id: waiting?.id ?? "", autostart: true }, "svc").catch((e: unknown) => e);
    expect(unmarked).toMatchObject({
      code: "INVALID_INPUT",
      message: `VM "${waiting?.name}" waits in pool "warm", which starts its own members; acquire it first.`,
    });
    const renamed = await renameVm(hangar, { id: waiting?.id ?? "", name: "mine-now" }, "svc").catch((e: unknown) => e);
    expect(renamed).toMatchObject({ code: "INVALID_INPUT", message: `VM "${waiting?.name}" waits in pool "warm", which names its members; acquire it first.` });
    const guarded = await setProtection(hangar, { id: waiting?.id ?? "", protection: true }, "svc").catch((e: unknown) => e);
    expect(guarded).toMatchObject({
      code: "INVALID_INPUT",
      message: `VM "${waiting?.name}" waits in pool "warm", which deletes its members as it needs; acquire it first.`,
    });
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    // Acquired and protected: a release is refused before it stops anything.
    await setProtection(hangar, { id: got.vmId, protection: true }, "svc");
    await expect(hangar.pools.release(got.vmId, "svc")).rejects.toMatchObject({ code: "VM_PROTECTED" });
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: got.vmId } })).state).toBe("Running");
    await setProtection(hangar, { id: got.vmId, protection: false }, "svc");
    await hangar.lifecycle.stopVm(got.vmId, 0, "svc");
    expect((await renameVm(hangar, { id: got.vmId, name: "mine-now" }, "svc")).name).toBe("mine-now");
    expect(await resizeVm(hangar, { id: got.vmId, cpus: 2 }, "svc")).toEqual({ cpus: 2, memoryMiB: 128 });
    expect(await setAutostart(hangar, { id: got.vmId, autostart: true }, "svc")).toEqual({ autostart: true, order: null, delaySec: 0 });
    // A release that fails is the caller's answer, not carried on later by the reconciler.
    fake.failNext.set("delete", new Error("disk busy"));
    await expect(hangar.pools.release(got.vmId, "svc")).rejects.toMatchObject({ code: "DRIVER_FAILED" });
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: got.vmId } })).toMatchObject({ releasePending: false });
  });

  it("keeps Paused members running with their CPUs stopped, and hands one out carried on", async () => {
    const pool = await newPool(2, "Paused");
    const vms = await members(pool.id);
    expect(vms.map((vm) => [vm.state, vm.readyState])).toEqual([
      ["Running", "ready"],
      ["Running", "ready"],
    ]);
    expect(vms.map((vm) => fake.vm(vm.id).paused)).toEqual([true, true]);
    const [listed] = await hangar.pools.listPools();
    expect(listed).toMatchObject({ staging: "Paused", ready: 2, size: 2 });

    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    const calls = fake.vm(got.vmId).calls;
    expect(fake.vm(got.vmId)).toMatchObject({ running: true, paused: false });
    // Carried on, not started again: one start, then pause, then unpause.
    expect(calls.filter((c) => c === "start")).toHaveLength(1);
    expect(calls.indexOf("unpause")).toBeGreaterThan(calls.indexOf("pause"));
    await hangar.pools.kick(pool.id);
    const idle = await hangar.db.vm.findMany({ where: { poolId: pool.id, acquiredAt: null } });
    expect(idle.map((vm) => fake.vm(vm.id).paused)).toEqual([true, true]);
  });

  it("pauses again at start-up a ready member of a Paused pool that a crash left running", async () => {
    const pool = await newPool(1, "Paused");
    const [member] = await members(pool.id);
    fake.vm(member?.id ?? "").paused = false;
    await hangar.pools.start();
    expect(fake.vm(member?.id ?? "").paused).toBe(true);
    expect((await members(pool.id)).map((vm) => vm.id)).toEqual([member?.id]);
  });

  it("gives 10 concurrent callers 10 different VMs from a pool of 3, and refills it", async () => {
    const pool = await newPool(3);
    fake.startDelayMs = 5;
    const acquired = await Promise.all(Array.from({ length: 10 }, (_, i) => hangar.pools.acquire(pool.id, { actor: `caller-${i}`, timeoutMs: 20_000 })));
    const ids = acquired.map((a) => a.vmId);
    expect(new Set(ids).size).toBe(10);
    for (const a of acquired) {
      expect(a.sshPort).toBeGreaterThan(0);
      expect(fake.vm(a.vmId).running).toBe(true);
    }
    const rows = await hangar.db.vm.findMany({ where: { id: { in: ids } } });
    expect(new Set(rows.map((r) => r.acquiredBy)).size).toBe(10);
    // The first three came from the warm members, resumed rather than booted.
    const resumed = ids.filter((id) => fake.vm(id).calls.includes("resume"));
    expect(resumed.length).toBeGreaterThanOrEqual(3);
    await hangar.pools.kick(pool.id);
    const idle = await hangar.db.vm.findMany({ where: { poolId: pool.id, acquiredAt: null } });
    expect(idle.map((vm) => vm.state)).toEqual(["Suspended", "Suspended", "Suspended"]);
  });

  it("releases an acquired VM by stopping and deleting it; it never returns to the pool", async () => {
    const pool = await newPool(1);
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    expect(got.privateKey).toContain("PRIVATE KEY");
    await hangar.pools.release(got.vmId, "svc");
    expect(await hangar.db.vm.findUnique({ where: { id: got.vmId } })).toBeNull();
    expect(fake.vm(got.vmId)).toMatchObject({ running: false, exists: false });
    await hangar.pools.kick(pool.id);
    const after = await members(pool.id);
    expect(after).toHaveLength(1);
    expect(after[0]?.id).not.toBe(got.vmId);
    const actions = (await hangar.db.event.findMany({ where: { action: { startsWith: "pool-" } } })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["pool-created", "pool-replenished", "pool-acquired", "pool-released"]));
    await expect(hangar.pools.release(after[0]?.id ?? "", "svc")).rejects.toMatchObject({ code: "INVALID_INPUT" });
  });

  it("boots the replacement only a moment after the acquired VM is handed out, so the two do not share the CPU", async () => {
    const pool = await newPool(1);
    fake.startDelayMs = 300;
    const acquiring = hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    await sleep(150);
    expect(await members(pool.id)).toHaveLength(1);
    const got = await acquiring;
    // refillDelayMs (1 s here): the new owner's first login has the CPU to itself.
    await sleep(150);
    expect(await members(pool.id)).toHaveLength(1);
    await vi.waitFor(async () => expect(await members(pool.id)).toHaveLength(2), { timeout: 5000, interval: 50 });
    await hangar.pools.kick(pool.id);
    const after = await members(pool.id);
    expect(after.find((vm) => vm.id !== got.vmId)?.state).toBe("Suspended");
  });

  it("tells open lists a Running member was handed out: its owner changed, not its state", async () => {
    const pool = await newPool(1, "Running");
    const changes: VmChange[] = [];
    const unsubscribe = hangar.bus.subscribe((change) => changes.push(change));
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    unsubscribe();
    const handed = await hangar.db.event.findFirstOrThrow({ where: { vmId: got.vmId, action: "pool-acquired" } });
    expect(changes.filter((change) => change.vmId === got.vmId)).toEqual([{ vmId: got.vmId, vmName: got.name, state: "Running", eventId: handed.id }]);
  });

  it("counts an acquired VM against its new owner's quota, as a created one", async () => {
    const pool = await newPool(1, "Running");
    const owner = await hangar.db.user.create({ data: { id: "capped", email: "capped@test.hangar", name: "capped", role: "operator", maxVms: 1 } });
    const first = await hangar.pools.acquire(pool.id, { actor: owner.email, ownerId: owner.id, timeoutMs: 5000 });
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: first.vmId } })).ownerId).toBe(owner.id);
    await hangar.pools.kick(pool.id);
    await expect(hangar.pools.acquire(pool.id, { actor: owner.email, ownerId: owner.id, timeoutMs: 5000 })).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      message: "Your quota is 1 VM and you have 1; delete one first.",
    });
    // The pool's member stays the pool's, for someone within their quota.
    expect(await hangar.db.vm.count({ where: { poolId: pool.id, acquiredAt: null } })).toBe(1);
  });

  it("installs the caller's public key instead of handing out the VM's own", async () => {
    const pool = await newPool(1, "Running");
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000, publicKey: "ssh-ed25519 AAAAC3Nz caller" });
    expect(got.privateKey).toBeUndefined();
    // For the account the caller logs in as: Hangar's own, not root.
    expect(got.user).toBe("hangar");
    const install = fake.vm(got.vmId).shells.find((s) => s.options.input === "ssh-ed25519 AAAAC3Nz caller\n");
    expect(install?.options).toMatchObject({ user: "hangar" });
    expect(install?.options.asRoot).toBeFalsy();
    expect(install?.command.join(" ")).toContain('"$HOME/.ssh/authorized_keys"');
  });

  it("hands out only ready members: one whose cloud-init does not finish is replaced, never handed out", async () => {
    fake.cloudInitStatus = '{"status": "running"}';
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const pool = await hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size: 1, staging: "Running" }, "tester");
    await expect(hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 1500 })).rejects.toMatchObject({ code: "WAIT_FAILED" });
    await expect
      .poll(() => hangar.db.event.count({ where: { action: "pool-failed", message: { contains: "was not ready within 1 s (cloud-init running)" } } }), {
        timeout: 30_000,
      })
      .toBeGreaterThan(0);
    fake.cloudInitStatus = CLOUD_INIT_DONE;
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 30_000 });
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: got.vmId } })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
  });

  it("deletes the members not handed out when the pool is deleted, and leaves handed-out ones with their holders", async () => {
    const pool = await newPool(2);
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    await hangar.pools.kick(pool.id);
    await hangar.pools.deletePool(pool.id, "tester");
    expect(await hangar.db.pool.count()).toBe(0);
    const left = await hangar.db.vm.findMany();
    expect(left.map((vm) => [vm.id, vm.poolId, vm.acquiredBy, vm.state])).toEqual([[got.vmId, null, "svc", "Running"]]);
    expect(fake.vm(got.vmId)).toMatchObject({ running: true, exists: true });
    expect([...fake.vms].filter(([id]) => id !== got.vmId).every(([, vm]) => !vm.running && !vm.exists)).toBe(true);
    const deleted = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-deleted" } });
    expect(deleted.message).toBe("Pool warm: deleted by tester; 1 VM handed out stay with their holders");
    // Still the holder's VM: released (or deleted) like any acquired one.
    await hangar.pools.release(got.vmId, "svc");
    expect(await hangar.db.vm.count()).toBe(0);
  });

  it("while a delete runs: the pool shows as being deleted, acquires and resizes get the reason, the keeper stops", async () => {
    const pool = await newPool(1, "Running");
    fake.startDelayMs = 300;
    await hangar.pools.resizePool(pool.id, 2);
    await expect.poll(() => hangar.db.vm.count({ where: { poolId: pool.id, state: "Starting" } })).toBe(1);
    const deleting = hangar.pools.deletePool(pool.id, "tester");
    await expect.poll(async () => (await hangar.db.pool.findUniqueOrThrow({ where: { id: pool.id } })).deletingAt).not.toBeNull();

    const [listed] = await hangar.pools.listPools();
    expect(listed).toMatchObject({ name: "warm", deleting: true });
    await expect(hangar.pools.acquire(pool.id, { actor: "late", timeoutMs: 5000 })).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: 'Pool "warm" is being deleted; it hands out no more VMs.',
    });
    await expect(hangar.pools.resizePool(pool.id, 5)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await hangar.pools.kick(pool.id);

    await deleting;
    expect(await hangar.db.vm.count()).toBe(0);
    expect([...fake.vms.values()].every((vm) => !vm.running && !vm.exists)).toBe(true);
    expect(fake.vms.size).toBe(2);
    await expect(hangar.pools.acquire(pool.id, { actor: "later", timeoutMs: 5000 })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("races a delete with 10 acquires: each gets a VM that stays its own, or a clear error; nothing is made after the mark", async () => {
    const pool = await newPool(3);
    fake.startDelayMs = 20;
    const users = await Promise.all(
      Array.from({ length: 10 }, (_, i) => hangar.db.user.create({ data: { id: `user-${i}`, email: `u${i}@test.hangar`, name: `u${i}` } })),
    );
    const acquires = users.map((user, i) =>
      hangar.pools.acquire(pool.id, { actor: `caller-${i}`, ownerId: user.id, timeoutMs: 20_000 }).then(
        (got) => ({ i, got }),
        (error: unknown) => ({ i, error }),
      ),
    );
    // Some are handed out, others wait for the keeper's refills, when the delete comes.
    await expect.poll(() => hangar.db.vm.count({ where: { acquiredAt: { not: null } } }), { interval: 1 }).toBeGreaterThan(0);
    // Every VM row seen until the pool shows its mark: rows first, then the pool, so a look
    // that still finds the pool unmarked saw only rows made before the mark. Looked at all
    // along, since the delete removes members soon after the mark.
    const rowsAtMark = new Set<string>();
    const watching = (async () => {
      for (;;) {
        for (const row of await hangar.db.vm.findMany({ select: { id: true } })) rowsAtMark.add(row.id);
        const marked = await hangar.db.pool.findUnique({ where: { id: pool.id }, select: { deletingAt: true } });
        if (!marked || marked.deletingAt) return;
      }
    })();
    const deleting = hangar.pools.deletePool(pool.id, "tester");
    await watching;

    const outcomes = await Promise.all(acquires);
    await deleting;
    const held = new Set<string>();
    for (const outcome of outcomes) {
      if ("got" in outcome) {
        const row = await hangar.db.vm.findUniqueOrThrow({ where: { id: outcome.got.vmId } });
        expect([row.acquiredBy, row.ownerId, row.poolId, row.state]).toEqual([`caller-${outcome.i}`, `user-${outcome.i}`, null, "Running"]);
        expect(fake.vm(row.id)).toMatchObject({ running: true, exists: true });
        held.add(row.id);
      } else {
        expect(outcome.error).toBeInstanceOf(HangarError);
        expect(outcome.error).toMatchObject({ code: "NOT_FOUND", message: expect.stringMatching(/is being deleted|No pool with id/) });
      }
    }
    expect(held.size).toBeGreaterThan(0);
    expect(held.size).toBeLessThan(10);
    expect(await hangar.db.pool.count()).toBe(0);
    expect((await hangar.db.vm.findMany()).map((vm) => vm.id).sort()).toEqual([...held].sort());
    for (const [id, vm] of fake.vms) {
      if (!held.has(id)) expect([id, vm.running, vm.exists]).toEqual([id, false, false]);
      // Every VM the keeper cloned had its row before the pool was marked.
      if (vm.calls.includes("create")) expect(rowsAtMark.has(id)).toBe(true);
    }
  });

  it("finishes at start-up a pool delete that a restart cut short, without refilling the pool", async () => {
    const pool = await newPool(2);
    await hangar.db.pool.update({ where: { id: pool.id }, data: { deletingAt: new Date() } });
    await hangar.pools.start();
    await expect.poll(() => hangar.db.pool.count()).toBe(0);
    expect(await hangar.db.vm.count()).toBe(0);
    expect(fake.vms.size).toBe(2);
  });

  it("shrinks and grows when resized", async () => {
    const pool = await newPool(3, "Stopped");
    await hangar.pools.resizePool(pool.id, 1);
    expect(await members(pool.id)).toHaveLength(1);
    await hangar.pools.resizePool(pool.id, 2);
    await hangar.pools.kick(pool.id);
    expect(await members(pool.id)).toHaveLength(2);
  });

  it("hands out the next member when the one claimed has its qemu ended under the hand-out; a fault of the host's is the answer", async () => {
    const pool = await newPool(2);
    const [first, second] = await hangar.db.vm.findMany({ where: { poolId: pool.id }, orderBy: { createdAt: "asc" } });
    fake.failNext.set("start", new NotRunningError("qemu was ended by SIGKILL as it started"));
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    expect(got.vmId).toBe(second?.id);
    expect(await hangar.db.vm.findUnique({ where: { id: first?.id } })).toBeNull();
    const failed = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-failed" } });
    expect(failed.message).toBe(`Pool warm: ${first?.name} could not be handed out: its qemu ended meanwhile`);

    // qemu that cannot start at all would fail each next member alike: the caller is told at once.
    await hangar.pools.kick(pool.id);
    fake.failNext.set("start", new Error("qemu failed to start (exit code 1); the server log has its output"));
    const refused = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "DRIVER_FAILED", message: expect.stringMatching(/^Starting VM "warm-[0-9a-f]+" failed: qemu failed to start/) });
    // One member tried, not the next one too.
    expect(await hangar.db.event.count({ where: { action: "pool-failed" } })).toBe(2);
  });

  it("retries a failing create with backoff, leaves no half-made VM, and an acquire times out cleanly", async () => {
    fake.failAlways.set("create", new Error("qemu-img: No space left on device"));
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const pool = await hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size: 2, staging: "Suspended" }, "t");
    const error = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HangarError);
    expect((error as HangarError).code).toBe("WAIT_FAILED");
    // The keeper keeps retrying (with backoff), recording each failure…
    await expect.poll(() => hangar.db.event.count({ where: { action: "pool-failed" } }), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    // …and deletes each failed member before it backs off: between attempts, none is left.
    await expect.poll(() => hangar.db.vm.count(), { timeout: 30_000, interval: 5 }).toBe(0);

    fake.failAlways.delete("create");
    // The running filler finishes once the pool is full.
    await hangar.pools.kick(pool.id);
    expect((await members(pool.id)).map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);
  });

  it("sweeps at start-up a member a crash left off its staging state (a suspend rolled back), and refills", async () => {
    const pool = await newPool(2);
    const [first, second] = await members(pool.id);
    // The keeper's suspend was cut short; the reconciler rolled it back to Running.
    await hangar.lifecycle.startVm(first?.id ?? "", "t");
    await hangar.pools.start();
    await hangar.pools.kick(pool.id);
    const after = await members(pool.id);
    expect(after.map((vm) => vm.id)).not.toContain(first?.id);
    expect(after.map((vm) => vm.id)).toContain(second?.id);
    expect(after.map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);
    expect(fake.vm(first?.id ?? "")).toMatchObject({ running: false, exists: false });
  });

  it("watches Running members that were not ready yet again at start-up", async () => {
    const pool = await newPool(1, "Running");
    const [member] = await members(pool.id);
    // As a restart leaves it: Running, its boot's watch gone with the old process.
    await hangar.db.vm.update({ where: { id: member?.id ?? "" }, data: { readyState: "booting", readyAt: null, readyDetail: null } });
    await hangar.pools.start();
    await expect.poll(async () => (await hangar.db.vm.findUniqueOrThrow({ where: { id: member?.id ?? "" } })).readyState, { timeout: 10_000 }).toBe("ready");
    expect((await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 })).vmId).toBe(member?.id);
  });

  it("sweeps half-made members at start-up and refills", async () => {
    const pool = await newPool(2);
    const [first] = await members(pool.id);
    await hangar.db.vm.update({ where: { id: first?.id ?? "" }, data: { state: "ErrorUnknown" } });
    await hangar.pools.start();
    await hangar.pools.kick(pool.id);
    const after = await members(pool.id);
    expect(after.map((vm) => vm.id)).not.toContain(first?.id);
    expect(after.map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);
  });
});

describe("members that fall off their staging", () => {
  it.each(["Running", "Paused"] as const)("%s: a member whose qemu died is replaced at once, not at the next restart", async (staging) => {
    await hangar.pools.start();
    const pool = await newPool(1, staging);
    const [member] = await members(pool.id);
    // kill -9 of its qemu; the reconciler's loop sees it and marks the member Stopped.
    fake.vm(member?.id ?? "").running = false;
    await hangar.reconciler.reconcileWatched();
    // No kick here: the keeper heard the change itself.
    await expect.poll(() => hangar.db.vm.findUnique({ where: { id: member?.id ?? "" } }), { timeout: 10_000 }).toBeNull();
    await expect.poll(async () => (await hangar.pools.listPools())[0]?.ready, { timeout: 10_000 }).toBe(1);
    expect(fake.vm(member?.id ?? "")).toMatchObject({ running: false, exists: false });
    const swept = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-swept" } });
    expect(swept.message).toBe(`Pool warm: ${member?.name} was Stopped, off the pool's staging (${staging}): deleted, to be replaced`);
    const got = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    expect(got.vmId).not.toBe(member?.id);
  });

  it("replaces at once a waiting member someone deleted (vm.delete), not at the next restart", async () => {
    await hangar.pools.start();
    const pool = await newPool(1, "Suspended");
    const [member] = await members(pool.id);
    await hangar.lifecycle.deleteVm(member?.id ?? "", "someone");
    // No kick here: the keeper heard the delete itself, though the row naming the pool is gone.
    await expect.poll(async () => (await hangar.pools.listPools())[0]?.ready, { timeout: 10_000 }).toBe(1);
    const [replacement] = await members(pool.id);
    expect(replacement?.id).not.toBe(member?.id);
  });

  it("replaces a Running member whose boot, watched again after a restart, ended not ready", async () => {
    const pool = await newPool(1, "Running");
    const [member] = await members(pool.id);
    await hangar.db.vm.update({ where: { id: member?.id ?? "" }, data: { readyState: "error", readyDetail: "cloud-init: status: error" } });
    await hangar.pools.kick(pool.id);
    expect(await hangar.db.vm.findUnique({ where: { id: member?.id ?? "" } })).toBeNull();
    const swept = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-swept" } });
    expect(swept.message).toBe(`Pool warm: ${member?.name} was not ready (its cloud-init failed): deleted, to be replaced`);
    expect((await members(pool.id)).map((vm) => [vm.state, vm.readyState])).toEqual([["Running", "ready"]]);
  });

  it("sweeps nothing a pool is making or keeps: members pass through Stopped, and a Stopped pool's wait in it", async () => {
    // Listening from the start: every change of the members being made kicks the keeper.
    await hangar.pools.start();
    const suspended = await newPool(2, "Suspended");
    const image = await hangar.db.image.findFirstOrThrow();
    const stopped = await hangar.pools.createPool({ name: "cold", imageId: image.id, cpus: 1, memoryMiB: 128, size: 2, staging: "Stopped" }, "tester");
    await hangar.pools.kick(stopped.id);
    await hangar.pools.kick(suspended.id);
    expect((await members(suspended.id)).map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);
    expect((await members(stopped.id)).map((vm) => vm.state)).toEqual(["Stopped", "Stopped"]);
    expect(fake.vms.size).toBe(4);
    expect(await hangar.db.event.count({ where: { action: "pool-swept" } })).toBe(0);
  });
});

describe("what a restart cut short", () => {
  it.each([
    ["after the member was stopped", true],
    ["before the member was stopped", false],
  ] as const)("finishes a Paused pool's delete that had taken its member %s: the member is deleted, not left as handed out", async (_, stopped) => {
    const pool = await newPool(1, "Paused");
    const [member] = await members(pool.id);
    const id = member?.id ?? "";
    // What the first run left: the pool marked, its member taken by the keeper to delete…
    await hangar.db.pool.update({ where: { id: pool.id }, data: { deletingAt: new Date() } });
    await hangar.db.vm.update({ where: { id }, data: { acquiredAt: new Date(), acquiredBy: "pool-keeper" } });
    // …and its stop, carried out by the reconciler at start-up, or never begun.
    if (stopped) await hangar.lifecycle.stopVm(id, 0, "reconciler");
    await hangar.pools.start();
    // The event is the delete's last write: the pool row goes just before it.
    await expect.poll(() => hangar.db.event.count({ where: { action: "pool-deleted" } })).toBe(1);
    expect(await hangar.db.pool.count()).toBe(0);
    expect(await hangar.db.vm.count()).toBe(0);
    expect(fake.vm(id)).toMatchObject({ running: false, exists: false });
    // A paused guest ignores the power button: a member thrown away is forced off at once.
    expect(fake.vm(id).lastStopTimeoutMs).toBe(0);
    const deleted = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-deleted" } });
    expect(deleted.message).toBe("Pool warm: deleted by pool-keeper");
  });

  it("deletes at start-up the members the keeper had taken to delete (a resize cut short)", async () => {
    const pool = await newPool(2, "Stopped");
    const [first, second] = await members(pool.id);
    await hangar.db.pool.update({ where: { id: pool.id }, data: { size: 1 } });
    await hangar.db.vm.update({ where: { id: first?.id ?? "" }, data: { acquiredAt: new Date(), acquiredBy: "pool-keeper" } });
    await hangar.pools.start();
    await hangar.pools.kick(pool.id);
    expect((await members(pool.id)).map((vm) => vm.id)).toEqual([second?.id]);
    expect(fake.vm(first?.id ?? "").exists).toBe(false);
  });

  it.each(["Suspended", "Paused"] as const)("%s: undoes an acquire that had claimed its member but not handed it out; VMs handed out stay", async (staging) => {
    const pool = await newPool(1, staging);
    const handed = await hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    await hangar.pools.kick(pool.id);
    const [claimed] = await hangar.db.vm.findMany({ where: { poolId: pool.id, acquiredAt: null } });
    const id = claimed?.id ?? "";
    const caller = await hangar.db.user.create({ data: { id: "caller", email: "caller@test.hangar", name: "caller" } });
    // What the cut-short acquire left: claimed for its caller, resumed, no "acquired" event.
    await hangar.db.vm.update({ where: { id }, data: { acquiredAt: new Date(), acquiredBy: caller.email, ownerId: caller.id } });
    if (staging === "Suspended") await hangar.lifecycle.startVm(id, caller.email);
    else fake.vm(id).paused = false;

    await hangar.pools.start();
    expect(await hangar.db.vm.findUnique({ where: { id } })).toBeNull();
    expect(fake.vm(id)).toMatchObject({ running: false, exists: false });
    const undone = await hangar.db.event.findFirstOrThrow({ where: { action: "pool-acquire-undone" } });
    expect(undone.message).toBe(
      `Pool warm: ${claimed?.name}: an acquire by caller@test.hangar cut short by a restart was undone (the VM was never handed out); it was deleted`,
    );
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: handed.vmId } })).toMatchObject({ acquiredBy: "svc", state: "Running" });
    expect(fake.vm(handed.vmId)).toMatchObject({ running: true, exists: true });
    // The pool makes a new member for the next acquire.
    await hangar.pools.kick(pool.id);
    expect((await hangar.pools.listPools())[0]).toMatchObject({ ready: 1 });
  });

  it("leaves alone an acquire this process is still handing out", async () => {
    // Its SSH probe held open: the acquire is between lifecycle actions, the VM not busy.
    let held: Promise<void> | undefined;
    let answer = () => undefined as void;
    const driver = new FakeDriver();
    const own = await createTestHangar({
      driverFor: (vmId) => {
        const manager = driver.managerFor(vmId);
        return { ...manager, sshAnswers: async (port) => (await held, manager.sshAnswers(port)) };
      },
      pool: { backoffMs: { first: 10, max: 40 }, readyTimeoutMs: 1000 },
    });
    try {
      const image = await own.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
      const pool = await own.hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size: 1, staging: "Running" }, "t");
      await own.hangar.pools.kick(pool.id);
      held = new Promise((resolve) => (answer = resolve));
      const acquiring = own.hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
      await expect.poll(() => own.hangar.db.vm.count({ where: { acquiredAt: { not: null } } }), { interval: 5 }).toBe(1);
      await own.hangar.pools.start();
      answer();
      const got = await acquiring;
      expect(await own.hangar.db.vm.findUniqueOrThrow({ where: { id: got.vmId } })).toMatchObject({ acquiredBy: "svc", state: "Running" });
      expect(await own.hangar.db.event.count({ where: { action: "pool-acquire-undone" } })).toBe(0);
    } finally {
      await own.hangar.pools.close();
      await own.cleanup();
    }
  });
});

describe("handing a member out", () => {
  /** VMs whose SSH was probed, in order. */
  const probed: string[] = [];
  let own: TestHangar;

  beforeEach(async () => {
    probed.length = 0;
    const driver = new FakeDriver();
    own = await createTestHangar({
      driverFor: (vmId) => {
        const manager = driver.managerFor(vmId);
        return {
          ...manager,
          sshAnswers: (port) => {
            probed.push(vmId);
            return manager.sshAnswers(port);
          },
        };
      },
      pool: { backoffMs: { first: 10, max: 40 }, readyTimeoutMs: 1000 },
    });
  });
  afterEach(async () => {
    await own.hangar.pools.close();
    await own.cleanup();
  });

  // A Running member has run on since it was ready; a Paused or Suspended one carries on from
  // that very instant, and a probe would cost its resumed guest a second sshd.
  it.each([
    ["Running", 1],
    ["Paused", 0],
    ["Suspended", 0],
  ] as const)("%s: its SSH probed %i time(s) before it is handed out", async (staging, probes) => {
    const image = await own.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const pool = await own.hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size: 1, staging }, "tester");
    await own.hangar.pools.kick(pool.id);
    const [member] = await own.hangar.db.vm.findMany({ where: { poolId: pool.id } });
    probed.length = 0;
    const got = await own.hangar.pools.acquire(pool.id, { actor: "svc", timeoutMs: 5000 });
    expect(got.vmId).toBe(member?.id);
    expect(probed.filter((id) => id === got.vmId)).toHaveLength(probes);
  });
});
