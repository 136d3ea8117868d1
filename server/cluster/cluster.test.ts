// One process's side of several hosts (on SQLite and PostgreSQL alike): VMs of an offline
// host, placement and capacity on this host, the host lease, rows from before hosts. The
// calls between real processes are in cluster.postgres.test.ts.
import os from "node:os";
import { TRPCError } from "@trpc/server";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHosts, HostNameTakenError } from "../hosts.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;
let fake: FakeDriver;
let imageId: string;

/** A limit of `limitMiB` for VMs on this machine, whatever its RAM. */
function reserveLeaving(limitMiB: number): number {
  return Math.floor(os.totalmem() / 1024 / 1024) - limitMiB;
}

async function setUp(settings: Parameters<typeof createTestHangar>[0] = {}) {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor, ...settings });
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
}
afterEach(() => t.cleanup());

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { code: error.code, message: error.message, domainCode: error.cause && "code" in error.cause ? error.cause.code : undefined };
}

const spec = { cpus: 1, memoryMiB: 256 };

describe("a VM whose host is offline", () => {
  beforeEach(() => setUp());

  it("shows hostOffline, answers vm.get from the database, refuses actions with HOST_OFFLINE, and is left alone", async () => {
    const { hangar } = t;
    const admin = await callerFor(hangar, "admin");
    const vm = await admin.vm.create({ name: "elsewhere", imageId, ...spec });
    const beta = await hangar.db.host.create({
      data: { name: "beta", apiAddress: "http://10.0.0.2:3000", heartbeatAt: new Date(Date.now() - 60_000), accelerator: "kvm", freeMemoryMiB: 1 },
    });
    await hangar.db.vm.update({ where: { id: vm.id }, data: { hostId: beta.id, state: "Running", pid: 4242 } });
    const callsBefore = fake.vms.get(vm.id)?.calls.length;

    // One call at a time, each refused on its own; the silence is 60 s when the test began
    // and a second more on a loaded machine.
    for (const call of [
      () => admin.vm.stop({ id: vm.id }),
      () => admin.vm.exec({ id: vm.id, command: ["true"] }),
      () => admin.snapshot.create({ id: vm.id, name: "s1" }),
      () => admin.vm.delete({ id: vm.id }),
    ]) {
      expect(await refusal(call())).toEqual({
        code: "PRECONDITION_FAILED",
        domainCode: "HOST_OFFLINE",
        message: expect.stringMatching(
          /^That VM is on host beta, which is offline \(no heartbeat for 6[0-2] s\); nothing acts on its VMs until that host's Hangar runs again\.$/,
        ),
      });
    }
    const shown = await admin.vm.get({ id: vm.id });
    expect(shown).toMatchObject({ state: "Running", hostOffline: true, actions: [], serialTail: "", disk: null, host: { name: "beta" } });
    expect((await admin.vm.list()).items.find((row) => row.id === vm.id)).toMatchObject({ hostOffline: true, actions: [] });
    expect((await admin.host.list()).find((h) => h.name === "beta")).toMatchObject({ online: false });

    // Its qemu is beta's to judge: this host's reconciler does not mark it Stopped.
    await hangar.reconciler.reconcileAll();
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).toMatchObject({ state: "Running", pid: 4242 });
    expect(fake.vms.get(vm.id)?.calls.length).toBe(callsBefore);
  });

  it("refuses a create on an offline or unknown host, and honours this host", async () => {
    const { hangar } = t;
    const admin = await callerFor(hangar, "admin");
    const beta = await hangar.db.host.create({
      data: { name: "beta", apiAddress: "http://10.0.0.2:3000", heartbeatAt: new Date(Date.now() - 30_000), accelerator: "kvm", freeMemoryMiB: 1 },
    });
    expect(await refusal(admin.vm.create({ name: "on-beta", imageId, hostId: beta.id, ...spec }))).toEqual({
      code: "PRECONDITION_FAILED",
      domainCode: "HOST_OFFLINE",
      message: expect.stringMatching(/^Host beta is offline \(no heartbeat for 3[0-2] s\); pick another host, or leave hostId out\.$/),
    });
    expect(await refusal(admin.vm.create({ name: "nowhere", imageId, hostId: "nosuchhost", ...spec }))).toMatchObject({
      code: "NOT_FOUND",
      message: 'No host with id "nosuchhost"; host.list names the hosts.',
    });
    const self = await hangar.hosts.selfId();
    expect(await admin.vm.create({ name: "here", imageId, hostId: self, ...spec })).toMatchObject({ host: { id: self }, hostOffline: false });
    // Without a host, placement picks a live one: this host, the only one online.
    expect(await admin.vm.create({ name: "placed", imageId, ...spec })).toMatchObject({ host: { id: self } });
    expect(await hangar.db.vm.count({ where: { hostId: beta.id } })).toBe(0);
  });
});

describe("usage of a VM on another host", () => {
  beforeEach(() => setUp());

  it("is the minute its host stored last, in vm.list and on the live usage stream; a stopped one has none", async () => {
    const { hangar } = t;
    const admin = await callerFor(hangar, "admin");
    const [running, stopped] = [await admin.vm.create({ name: "busy", imageId, ...spec }), await admin.vm.create({ name: "idle", imageId, ...spec })];
    const beta = await hangar.db.host.create({
      data: { name: "beta", apiAddress: "http://10.0.0.2:3000", heartbeatAt: new Date(), accelerator: "tcg", freeMemoryMiB: 4096 },
    });
    await hangar.db.vm.update({ where: { id: running.id }, data: { hostId: beta.id, state: "Running", pid: 4242 } });
    await hangar.db.vm.update({ where: { id: stopped.id }, data: { hostId: beta.id } });
    const minute = (cpuPercent: number, at: number) =>
      JSON.stringify({
        cpuPercent,
        rssBytes: 300 * 1024 * 1024,
        ...Object.fromEntries(
          ["diskReadBytesPerSec", "diskWriteBytesPerSec", "diskReadOpsPerSec", "diskWriteOpsPerSec", "netRxBytesPerSec", "netTxBytesPerSec"].map((k) => [k, 0]),
        ),
        at,
      });
    // What beta's sampler stored: two minutes of the running VM, one of the stopped one's past.
    for (const [subjectId, cpuPercent, ago] of [
      [running.id, 10, 120_000],
      [running.id, 37, 60_000],
      [stopped.id, 50, 60_000],
    ] as const) {
      await hangar.db.metricPoint.create({ data: { kind: "vm", subjectId, at: new Date(Date.now() - ago), data: minute(cpuPercent, Date.now() - ago) } });
    }

    const sample = await hangar.metrics.tick();
    const rows = (await admin.vm.list()).items;
    expect(rows.find((row) => row.id === running.id)?.usage).toEqual({ cpuPercent: 37, rssMiB: 300 });
    expect(rows.find((row) => row.id === stopped.id)?.usage).toBeNull();
    expect(hangar.metrics.usages(sample)).toEqual([{ id: running.id, usage: { cpuPercent: 37, rssMiB: 300 } }]);
  });
});

describe("this host back after a time offline", () => {
  beforeEach(() => setUp());

  it("tells each VM with something to check again, not the stopped ones", async () => {
    const { hangar } = t;
    const admin = await callerFor(hangar, "admin");
    const [running, stopped] = [
      await admin.vm.create({ name: "was-running", imageId, ...spec }),
      await admin.vm.create({ name: "was-stopped", imageId, ...spec }),
    ];
    await hangar.db.vm.update({ where: { id: running.id }, data: { state: "Running", pid: 4242 } });
    await hangar.db.vm.update({ where: { id: stopped.id }, data: { state: "Stopped" } });
    await hangar.cluster.recordBack(42_000, hangar.recorder);
    const told = await hangar.db.event.findMany({ where: { action: "host-back" } });
    expect(told.map((event) => [event.vmName, event.message])).toEqual([
      ["was-running", `Host ${hangar.hosts.name} is back after 42 s offline; its reconciler checks this VM again`],
    ]);
  });
});

describe("capacity of this host", () => {
  beforeEach(() => setUp({ settings: { HANGAR_MEMORY_RESERVE_MIB: reserveLeaving(600) } }));

  it("refuses a create and a start beyond the host's memory for VMs, with a sentence", async () => {
    const admin = await callerFor(t.hangar, "admin");
    expect(await refusal(admin.vm.create({ name: "huge", imageId, cpus: 1, memoryMiB: 1024 }))).toMatchObject({
      code: "PRECONDITION_FAILED",
      domainCode: "HOST_FULL",
      message: expect.stringMatching(/^No online host has 1024 MiB of memory left for a VM \(the most any has is 600 MiB\)/),
    });
    const first = await admin.vm.create({ name: "first", imageId, ...spec, memoryMiB: 400 });
    // Stopped VMs hold no memory: a second create fits.
    const second = await admin.vm.create({ name: "second", imageId, ...spec, memoryMiB: 400 });
    await admin.vm.start({ id: first.id });
    const refused = await refusal(admin.vm.start({ id: second.id }));
    expect(refused).toMatchObject({ domainCode: "HOST_FULL" });
    expect(refused.message).toMatch(
      /^VM "second" cannot start: Host .* has 200 MiB of memory left for VMs \(of 600 MiB; 400 MiB taken by running VMs\), not the 400 MiB this VM needs/,
    );
    expect((await admin.vm.get({ id: second.id })).state).toBe("Stopped");
    await admin.vm.suspend({ id: first.id });
    expect((await admin.vm.start({ id: second.id })).state).toBe("Running");
  });

  it("admits one of two starts that each fit alone but not together", async () => {
    const admin = await callerFor(t.hangar, "admin");
    const a = await admin.vm.create({ name: "a", imageId, ...spec, memoryMiB: 400 });
    const b = await admin.vm.create({ name: "b", imageId, ...spec, memoryMiB: 400 });
    fake.startDelayMs = 50;
    const results = await Promise.allSettled([admin.vm.start({ id: a.id }), admin.vm.start({ id: b.id })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await t.hangar.db.vm.count({ where: { state: "Running" } })).toBe(1);
  });

  it("keeps a pool from filling past the host's memory, saying why", async () => {
    const pool = await t.hangar.pools.createPool({ name: "big", imageId, cpus: 1, memoryMiB: 1024, size: 1, staging: "Running" }, "tester");
    await expect.poll(() => t.hangar.db.event.findFirst({ where: { action: "pool-failed" } }), { timeout: 10_000 }).toBeTruthy();
    const failed = await t.hangar.db.event.findFirstOrThrow({ where: { action: "pool-failed" } });
    expect(failed.message).toMatch(/^Pool big: a new member failed: no room for another member: Host .* has 600 MiB of memory left for VMs/);
    expect(await t.hangar.db.vm.count({ where: { poolId: pool.id } })).toBe(0);
    await t.hangar.pools.deletePool(pool.id, "tester");
  });
});

describe("the host lease", () => {
  beforeEach(() => setUp());

  const hostsNamed = (name: string) =>
    createHosts({ db: t.hangar.db, name, apiAddress: "http://127.0.0.1:1", accelerator: () => "tcg", offlineAfterMs: 15_000 });

  it("refuses a second process with the same host name while the first holds it", async () => {
    const first = hostsNamed("twin");
    const second = hostsNamed("twin");
    expect(await first.claim()).toMatchObject({ offlineForMs: 0 });
    const error = await second.claim().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostNameTakenError);
    expect(error instanceof Error ? error.message : "").toMatch(
      new RegExp(
        `^Host name "twin" is held by another Hangar process \\(pid ${process.pid} on ${os.hostname()}\\) until .*; give this one its own HANGAR_HOST_NAME, or stop the other first\\.$`,
      ),
    );
    // The first stalls past its lease: the second takes the name, and the first, beating
    // again, learns it lost it.
    await t.hangar.db.host.update({ where: { name: "twin" }, data: { leaseUntil: new Date(Date.now() - 1000) } });
    expect(await second.claim()).toMatchObject({ offlineForMs: 0 });
    expect(await first.beat()).toEqual({ lost: true });
    expect(await second.beat()).toEqual({ lost: false, offlineForMs: 0 });
    // A clean shutdown gives it up: the next one starts at once.
    await second.release();
    expect(await hostsNamed("twin").claim()).toMatchObject({ offlineForMs: 0 });
  });

  it("takes over a lease that ran out, or whose process on this machine is gone, and says how long the host was offline", async () => {
    const { db } = t.hangar;
    const first = hostsNamed("phoenix");
    const { id } = await first.claim();
    await db.host.update({ where: { id }, data: { heartbeatAt: new Date(Date.now() - 40_000), leaseUntil: new Date(Date.now() - 25_000) } });
    const again = await hostsNamed("phoenix").claim();
    expect(again.id).toBe(id);
    expect(again.offlineForMs).toBeGreaterThanOrEqual(40_000);
    // A crash, then a restart within the lease: the holder's pid no longer runs here.
    await db.host.update({ where: { id }, data: { leaseOwner: `${os.hostname()}/2147483646/dead`, leaseUntil: new Date(Date.now() + 60_000) } });
    expect((await hostsNamed("phoenix").claim()).id).toBe(id);
  });
});

describe("rows from before hosts", () => {
  beforeEach(() => setUp());

  it("become this host's once, at start-up", async () => {
    const { db, cluster } = t.hangar;
    const old = await db.vm.create({ data: { name: "legacy", imageId, cpus: 1, memoryMiB: 64 } });
    expect(await cluster.adoptHostless()).toBe(1);
    expect((await db.vm.findUniqueOrThrow({ where: { id: old.id } })).hostId).toBe(await t.hangar.hosts.selfId());
    expect(await cluster.adoptHostless()).toBe(0);
  });
});
