// A VM move cut short (a kill -9 of either host at any step) leaves markers in VM
// directories; the sweep settles each from the row alone, on SQLite and PostgreSQL alike.
// The internal route gives nothing without a pass, nor any file of a VM not being moved.
// The move between two real processes is in everywhere.postgres.test.ts.
import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLUSTER_HEADER, clusterKey, issuePass } from "../auth/cluster-secret.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { startPeers } from "../testing/peers.ts";
import { INTERNAL_VMS_PATH, savedStateMismatch } from "./move.ts";

let t: TestHangar;

beforeEach(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
});
afterEach(() => t.cleanup());

describe("the sweep of moves cut short", () => {
  it("keeps the copy the row names, removes the other, and leaves moves under way and other VMs alone", async () => {
    const { db } = t.hangar;
    const self = await t.hangar.hosts.selfId();
    const peer = await db.host.create({
      data: { name: "peer", apiAddress: "http://127.0.0.1:9", heartbeatAt: new Date(), accelerator: "tcg", freeMemoryMiB: 0 },
    });
    const image = await db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const api = await callerFor(t.hangar);
    const vmsDir = path.join(t.env.stateDir, "vms");
    /** A VM whose row names `hostId`, with a directory here holding `markers`. */
    async function vm(name: string, hostId: string, markers: Record<string, string>) {
      const { id } = await api.vm.create({ name, imageId: image.id, cpus: 1, memoryMiB: 128 });
      await db.vm.update({ where: { id }, data: { hostId } });
      const dir = path.join(vmsDir, id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "disk.qcow2"), "disk");
      for (const [marker, content] of Object.entries(markers)) writeFileSync(path.join(dir, marker), content);
      return { id, dir };
    }
    const failedAway = await vm("failed-away", self, { "moving-to": peer.id });
    const movedAway = await vm("moved-away", peer.id, { "moving-to": peer.id });
    const taken = await vm("taken", self, { "moved-from": peer.id });
    const beingHanded = await vm("being-handed", peer.id, { "moved-from": peer.id });
    const neverHanded = await vm("never-handed", peer.id, { "moved-from": peer.id });
    const longAgo = new Date(Date.now() - 11 * 60_000);
    utimesSync(path.join(neverHanded.dir, "moved-from"), longAgo, longAgo);
    const unrelated = await vm("unrelated", peer.id, {});
    const halfFetched = path.join(vmsDir, ".incoming-abc");
    mkdirSync(halfFetched);

    await t.hangar.moves.sweep();

    // The source: the row stayed here (the move failed) or went to the target (its copy is stale).
    expect(existsSync(path.join(failedAway.dir, "disk.qcow2"))).toBe(true);
    expect(existsSync(path.join(failedAway.dir, "moving-to"))).toBe(false);
    expect(existsSync(movedAway.dir)).toBe(false);
    // The target: the row came (its copy is the VM), is perhaps coming now, or never came.
    expect(existsSync(path.join(taken.dir, "disk.qcow2"))).toBe(true);
    expect(existsSync(path.join(taken.dir, "moved-from"))).toBe(false);
    expect(existsSync(path.join(beingHanded.dir, "moved-from"))).toBe(true);
    expect(existsSync(neverHanded.dir)).toBe(false);
    expect(existsSync(halfFetched)).toBe(false);
    // No marker, no move: what another host's VM has here is not the sweep's to judge.
    expect(existsSync(unrelated.dir)).toBe(true);
  });

  it("refuses a move to the VM's own host with a sentence: on SQLite there is no other", async () => {
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const api = await callerFor(t.hangar);
    const { id } = await api.vm.create({ name: "alone", imageId: image.id, cpus: 1, memoryMiB: 128 });
    await expect(api.vm.move({ id, hostId: await t.hangar.hosts.selfId() })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: t.hangar.cluster.shared
        ? `VM "alone" is on host ${t.hangar.hosts.name} already.`
        : "This Hangar is a single host (several hosts share one PostgreSQL database), so there is no other host to move a VM to.",
    });
  });

  it("refuses to evacuate the only host, and leaves it taking VMs", async () => {
    const api = await callerFor(t.hangar);
    const self = await t.hangar.hosts.selfId();
    await expect(api.host.evacuate({ id: self })).rejects.toMatchObject({
      message: t.hangar.cluster.shared
        ? `No other host is online and out of maintenance to take host ${t.hangar.hosts.name}'s VMs; start Hangar on another host first.`
        : "This Hangar is a single host (several hosts share one PostgreSQL database), so there is no other host to take its VMs.",
    });
    await expect(api.host.restore({ id: "nosuchhost" })).rejects.toMatchObject({ code: t.hangar.cluster.shared ? "NOT_FOUND" : "BAD_REQUEST" });
    expect((await api.host.list()).map((h) => h.maintenanceSince)).toEqual([null]);
  });

  it("removes an offline host with nothing left on it, and no other", async () => {
    const api = await callerFor(t.hangar);
    const { db } = t.hangar;
    const self = await t.hangar.hosts.selfId();
    const hourAgo = new Date(Date.now() - 3_600_000);
    const gone = await db.host.create({ data: { name: "gone", apiAddress: "http://127.0.0.1:9", heartbeatAt: hourAgo, accelerator: "tcg", freeMemoryMiB: 0 } });
    const busy = await db.host.create({ data: { name: "busy", apiAddress: "http://127.0.0.1:9", heartbeatAt: hourAgo, accelerator: "tcg", freeMemoryMiB: 0 } });
    const image = await db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const { id } = await api.vm.create({ name: "left-behind", imageId: image.id, cpus: 1, memoryMiB: 128 });
    await db.vm.update({ where: { id }, data: { hostId: busy.id } });
    await db.imageCopy.create({ data: { imageId: image.id, hostId: gone.id } });
    await db.metricPoint.create({ data: { kind: "host", subjectId: gone.id, at: hourAgo, data: "{}" } });
    if (!t.hangar.cluster.shared) {
      await expect(api.host.remove({ id: gone.id })).rejects.toMatchObject({
        code: "BAD_REQUEST",
        message: "This Hangar is a single host (several hosts share one PostgreSQL database); it has no other host to remove.",
      });
      return;
    }
    await expect(api.host.remove({ id: self })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("is online; stop its Hangar first"),
    });
    await expect(api.host.remove({ id: busy.id })).rejects.toMatchObject({
      message: "Host busy still has 1 VM and 0 pools; start its Hangar and evacuate it (and delete its pools) first.",
    });
    expect(await api.host.remove({ id: gone.id })).toEqual({ id: gone.id, name: "gone" });
    expect((await api.host.list()).map((h) => h.name).sort()).toEqual(["busy", t.hangar.hosts.name].sort());
    expect(await db.imageCopy.count({ where: { hostId: gone.id } })).toBe(0);
    expect(await db.metricPoint.count({ where: { subjectId: gone.id } })).toBe(0);
    await expect(api.host.remove({ id: gone.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("places no new VM, pool, clone or pool member on a host in maintenance", async () => {
    const image = await t.hangar.db.image.create({ data: { name: "maint", path: "/m.qcow2" } });
    const api = await callerFor(t.hangar);
    const spec = { imageId: image.id, cpus: 1, memoryMiB: 128 };
    const { id } = await api.vm.create({ name: "before-maintenance", ...spec });
    const pool = await api.pool.create({ name: "kept", ...spec, size: 0, staging: "Stopped" });
    const self = await t.hangar.hosts.selfId();
    await t.hangar.db.host.update({ where: { id: self }, data: { maintenanceSince: new Date() } });
    try {
      // A pool of the host waits: a member made now would be one more VM to move away.
      await api.pool.resize({ id: pool.id, size: 1 });
      await t.hangar.pools.kick(pool.id);
      expect(await t.hangar.db.vm.count({ where: { poolId: pool.id } })).toBe(0);
      const everyHost = "Every host is in maintenance (evacuated by an admin); end one's maintenance first (host.restore, hangar host restore).";
      await expect(api.vm.create({ name: "during-maintenance", ...spec })).rejects.toMatchObject({ code: "PRECONDITION_FAILED", message: everyHost });
      await expect(api.pool.create({ name: "during-maintenance", ...spec, size: 0, staging: "Stopped" })).rejects.toMatchObject({ message: everyHost });
      await expect(api.vm.create({ name: "during-maintenance", ...spec, hostId: self })).rejects.toMatchObject({
        message: expect.stringContaining(`Host ${t.hangar.hosts.name} is in maintenance`),
      });
      await expect(api.vm.clone({ id, name: "clone-in-maintenance" })).rejects.toMatchObject({
        code: "PRECONDITION_FAILED",
        message: expect.stringContaining(`Host ${t.hangar.hosts.name} is in maintenance`),
      });
    } finally {
      await t.hangar.db.host.update({ where: { id: self }, data: { maintenanceSince: null } });
    }
    await t.hangar.pools.kick(pool.id);
    expect(await t.hangar.db.vm.count({ where: { poolId: pool.id } })).toBe(1);
  });
});

describe("savedStateMismatch", () => {
  const host = (name: string, qemuVersion: string, accelerator: string, cpuModel = "AMD EPYC 7763") => ({ name, qemuVersion, accelerator, cpuModel });
  it.each([
    [host("a", "8.2.2", "tcg"), host("b", "8.2.2", "tcg"), undefined],
    [host("a", "8.2.2", "tcg"), host("b", "8.2.2", "tcg", "Intel Xeon"), undefined],
    [host("a", "8.2.2", "kvm"), host("b", "8.2.2", "kvm"), undefined],
    [
      host("a", "8.2.2", "kvm"),
      host("b", "8.2.2", "kvm", "Intel Xeon"),
      "host a runs qemu 8.2.2 with kvm on AMD EPYC 7763, host b runs qemu 8.2.2 with kvm on Intel Xeon",
    ],
    [host("a", "8.2.2", "tcg"), host("b", "9.0.0", "tcg"), "host a runs qemu 8.2.2 with tcg, host b runs qemu 9.0.0 with tcg"],
    [host("a", "8.2.2", "tcg"), host("b", "8.2.2", "kvm"), "host a runs qemu 8.2.2 with tcg, host b runs qemu 8.2.2 with kvm"],
    [host("a", "", "tcg"), host("b", "", "tcg"), "host a has not said which qemu it runs yet, host b has not said which qemu it runs yet"],
    [host("a", "8.2.2", "undecided"), host("b", "8.2.2", "undecided"), "host a has not said which qemu it runs yet"],
  ])("%o to %o", (here, target, mismatch) => {
    const why = savedStateMismatch(here, target);
    if (mismatch === undefined) expect(why).toBeUndefined();
    else expect(why).toContain(mismatch);
  });
});

describe("the internal route of moves", () => {
  it("sends no file without a pass for that VM, nor any file of a VM this host is not moving", async () => {
    const peers = await startPeers(["alpha"], () => new FakeDriver().managerFor);
    try {
      const alpha = peers.peer("alpha");
      const image = await alpha.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
      const { id } = await (await callerFor(alpha.hangar)).vm.create({ name: "resting", imageId: image.id, cpus: 1, memoryMiB: 128 });
      const dir = path.join(alpha.hangar.env.stateDir, "vms", id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "id_ed25519"), "the VM's private key");
      const key = alpha.hangar.clusterKey;
      const get = (file: string, pass?: string, vmId = id) =>
        fetch(`${alpha.url}${INTERNAL_VMS_PATH}${vmId}/${file}`, { headers: pass ? { [CLUSTER_HEADER]: pass } : {} }).then((r) => r.status);

      expect(await get("id_ed25519")).toBe(403);
      expect(await get("id_ed25519", issuePass(key, "vm-move:another"))).toBe(403);
      expect(await get("id_ed25519", issuePass(clusterKey("another cluster's secret of 32+ chars"), `vm-move:${id}`))).toBe(403);
      // A valid pass, but no move of it under way here: nothing, not even a file it has.
      expect(await get("id_ed25519", issuePass(key, `vm-move:${id}`))).toBe(404);
      expect(await get(encodeURIComponent("../../hangar.db"), issuePass(key, `vm-move:${id}`))).toBe(404);
      expect(await get("x", undefined, "%E0%A4%A")).toBe(400);
      const post = await fetch(`${alpha.url}${INTERNAL_VMS_PATH}${id}`, { method: "POST" });
      expect(post.status).toBe(403);
    } finally {
      await peers.close();
    }
  });
});
