// Three real Hangar processes (alpha, beta, gamma) on one PostgreSQL database, each with
// its own state and images directory: calls made on one host run where the VM lives.
// Each host imported the built-in tiny guest into its own images directory at start-up.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TRPCClientError } from "@trpc/client";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshOptions } from "../driver/qemu/manager.ts";
import { liveStream, startCluster, type Cluster } from "../testing/cluster.ts";

const OFFLINE_AFTER_SEC = 6;
const spec = { cpus: 1, memoryMiB: 256 };

/** How many processes run qemu for VM `vmId` (its directory is in their command line). */
function qemusOf(vmId: string): number {
  let count = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.startsWith("qemu-system") && cmdline.includes(`/vms/${vmId}/`)) count += 1;
    } catch {
      // Gone meanwhile.
    }
  }
  return count;
}

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCClientError)) throw new Error(`expected a refusal, got ${String(error)}`);
  const data: unknown = error.data;
  const domainCode = typeof data === "object" && data !== null && "domainCode" in data ? data.domainCode : undefined;
  return { domainCode, message: error.message };
}

describe("three hosts on one database", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      env: { HANGAR_HOST_OFFLINE_AFTER_SEC: String(OFFLINE_AFTER_SEC) },
      // Gamma forwards its VMs' ports on every address, as a host that others reach does.
      // Only beta opens a host bridge to VMs.
      hostEnv: { gamma: { HANGAR_FORWARD_ADDRESS: "0.0.0.0" }, beta: { HANGAR_BRIDGES: "hgbr0" } },
    });
  }, 600_000);
  afterAll(async () => {
    await cluster?.close();
  }, 180_000);

  const image = async () => {
    const images = await cluster.host("alpha").api.image.list.query();
    const tiny = images.find((i) => i.name === "hangar-tiny");
    if (!tiny) throw new Error("no hangar-tiny image");
    return tiny.id;
  };

  it("every host registers, online, with its capacity", async () => {
    const hosts = await cluster.host("alpha").api.host.list.query();
    expect(hosts.map((h) => [h.name, h.online])).toEqual([
      ["alpha", true],
      ["beta", true],
      ["gamma", true],
    ]);
    for (const host of hosts) expect(host.memoryLimitMiB).toBeGreaterThan(0);
    expect(hosts.map((h) => h.bridges)).toEqual([[], ["hgbr0"], []]);
  });

  it("places a VM on a host bridge where that bridge is open to VMs, and names the bridges there are otherwise", async () => {
    const alpha = cluster.host("alpha").api;
    const bridged = await alpha.vm.create.mutate({ name: "bridged", imageId: await image(), network: "bridge", bridge: "hgbr0", ...spec });
    expect(bridged).toMatchObject({ host: { name: "beta" }, network: "bridge", bridge: "hgbr0" });
    expect(await refusal(alpha.vm.create.mutate({ name: "bridged-2", imageId: await image(), network: "bridge", bridge: "br7", ...spec }))).toEqual({
      domainCode: "INVALID_INPUT",
      message: 'Bridge "br7" is not open to VMs on any host; pick one that is: hgbr0.',
    });
    const onAlpha = { name: "bridged-3", imageId: await image(), network: "bridge" as const, bridge: "hgbr0", hostId: cluster.host("alpha").id, ...spec };
    expect(await refusal(alpha.vm.create.mutate(onAlpha))).toEqual({
      domainCode: "INVALID_INPUT",
      message: "No host bridge is open to VMs on host alpha; an admin lists them in HANGAR_BRIDGES.",
    });
    await alpha.vm.delete.mutate({ id: bridged.id });
  }, 120_000);

  it("creates through alpha on beta, then starts, execs in, stops and snapshots beta's VM through alpha", async () => {
    const alpha = cluster.host("alpha").api;
    const beta = cluster.host("beta");
    const vm = await alpha.vm.create.mutate({ name: "on-beta", imageId: await image(), hostId: beta.id, ...spec });
    expect(vm).toMatchObject({ state: "Stopped", host: { name: "beta" }, hostOffline: false });
    // The disk is in beta's state directory, not alpha's.
    expect(readdirSync(`${beta.stateDir}/vms`)).toContain(vm.id);

    expect(await alpha.vm.start.mutate({ id: vm.id })).toMatchObject({ state: "Running" });
    expect(qemusOf(vm.id)).toBe(1);
    const ran = await alpha.vm.exec.mutate({ id: vm.id, command: ["uname", "-n"], timeoutSec: 240 });
    expect(ran).toMatchObject({ exitCode: 0, stdout: "on-beta\n" });
    // The serial tail is beta's file, read there.
    expect((await alpha.vm.get.query({ id: vm.id })).serialTail).toContain("on-beta login:");
    // Usage at full resolution is beta's (the database holds minutes): alpha's page asks again
    // each interval rather than listen, since only beta samples the VM.
    await expect.poll(async () => (await alpha.metrics.vm.query({ id: vm.id, range: "1h" })).points.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await alpha.metrics.vm.query({ id: vm.id, range: "1h" })).toMatchObject({ live: false, intervalSec: 5 });
    expect(await beta.api.metrics.vm.query({ id: vm.id, range: "1h" })).toMatchObject({ live: true });
    expect(await alpha.vm.stop.mutate({ id: vm.id, timeoutSec: 30 })).toMatchObject({ state: "Stopped" });
    expect(await alpha.snapshot.create.mutate({ id: vm.id, name: "before" })).toEqual([expect.objectContaining({ name: "before" })]);
    expect(await cluster.host("gamma").api.snapshot.list.query({ id: vm.id })).toEqual([expect.objectContaining({ name: "before" })]);
    // Errors come back as beta raised them.
    expect(await refusal(alpha.snapshot.create.mutate({ id: vm.id, name: "before" }))).toEqual({
      domainCode: "ALREADY_EXISTS",
      message: 'VM "on-beta" already has a snapshot named "before".',
    });
    expect(await refusal(alpha.vm.suspend.mutate({ id: vm.id }))).toMatchObject({ domainCode: "VM_INVALID_TRANSITION" });
  }, 400_000);

  it("hands out a member of a pool on gamma through alpha, with gamma's address", async () => {
    const alpha = cluster.host("alpha").api;
    const gamma = cluster.host("gamma");
    const pool = await alpha.pool.create.mutate({ name: "warm", imageId: await image(), ...spec, size: 1, staging: "Running", hostId: gamma.id });
    expect(pool.hostId).toBe(gamma.id);
    const acquired = await alpha.pool.acquire.mutate({ poolId: pool.id, timeoutSec: 300 });
    const row = await cluster.db.host.findUniqueOrThrow({ where: { id: gamma.id } });
    expect(acquired.host).toBe(row.sshAddress);
    // An address to call, not the wildcard it listens on, and the member answers there.
    expect(acquired.host).not.toBe("0.0.0.0");
    const keyDir = mkdtempSync(path.join(os.tmpdir(), "hangar-acquired-"));
    try {
      const keyFile = path.join(keyDir, "key");
      writeFileSync(keyFile, acquired.privateKey ?? "", { mode: 0o600 });
      const login = await execa("ssh", [...sshOptions(acquired.sshPort, keyFile), "--", `${acquired.user}@${acquired.host}`, "hostname"], {
        reject: false,
        timeout: 60_000,
      });
      expect(login).toMatchObject({ exitCode: 0, stdout: acquired.name });
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
    const member = await cluster.db.vm.findUniqueOrThrow({ where: { id: acquired.vmId } });
    expect(member.hostId).toBe(gamma.id);
    // Only gamma's keeper fills it: every member ever made is gamma's.
    expect(await cluster.db.vm.count({ where: { poolId: pool.id, NOT: { hostId: gamma.id } } })).toBe(0);
    await alpha.pool.release.mutate({ vmId: acquired.vmId });
    await alpha.pool.delete.mutate({ id: pool.id });
  }, 400_000);

  it("takes exactly one of 20 concurrent starts made on all three hosts: one transition, one qemu", async () => {
    const beta = cluster.host("beta");
    const vm = await cluster.host("gamma").api.vm.create.mutate({ name: "contended", imageId: await image(), hostId: beta.id, ...spec });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => cluster.hosts[i % 3]?.api.vm.start.mutate({ id: vm.id })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const result of results) {
      if (result.status === "rejected")
        expect(await refusal(Promise.reject(result.reason))).toMatchObject({ domainCode: expect.stringMatching(/^(VM_BUSY|VM_INVALID_TRANSITION)$/) });
    }
    expect(await cluster.db.event.count({ where: { vmId: vm.id, action: "start" } })).toBe(1);
    expect(qemusOf(vm.id)).toBe(1);
  });

  it("shows beta offline once killed, refuses actions on its VMs with HOST_OFFLINE, and takes it back with an event", async () => {
    const alpha = cluster.host("alpha").api;
    const beta = cluster.host("beta");
    const vm = await cluster.db.vm.findUniqueOrThrow({ where: { name: "contended" } });
    // A dashboard open on alpha is told, without reloading, when beta goes and comes back.
    const live = liveStream(cluster.host("alpha"), cluster.token);
    const told = (offline: boolean) => live.changes.some((change) => change.vmId === vm.id && change.row?.hostOffline === offline);
    await beta.kill("SIGKILL");
    await expect.poll(async () => (await alpha.vm.get.query({ id: vm.id })).hostOffline, { timeout: OFFLINE_AFTER_SEC * 3000, interval: 500 }).toBe(true);
    await expect.poll(() => told(true), { timeout: OFFLINE_AFTER_SEC * 2000 }).toBe(true);
    expect(live.changes.find((change) => change.vmId === vm.id)).toMatchObject({ state: "Running", row: { hostOffline: true, actions: [] } });
    expect((await alpha.vm.list.query()).items.find((row) => row.id === vm.id)).toMatchObject({ hostOffline: true, actions: [], state: "Running" });
    const refused = await refusal(alpha.vm.stop.mutate({ id: vm.id }));
    expect(refused).toMatchObject({ domainCode: "HOST_OFFLINE" });
    expect(refused.message).toMatch(
      /^That VM is on host beta, which is offline \(no heartbeat for \d+ s\); nothing acts on its VMs until that host's Hangar runs again\.$/,
    );
    // Its qemu outlived its Hangar, and nobody else touched it.
    expect(qemusOf(vm.id)).toBe(1);

    await beta.restart();
    await expect.poll(async () => (await alpha.vm.get.query({ id: vm.id })).hostOffline, { timeout: 30_000, interval: 500 }).toBe(false);
    await expect.poll(() => told(false), { timeout: OFFLINE_AFTER_SEC * 2000 }).toBe(true);
    live.close();
    // One for this return; another only if beta's own beats stalled past the offline time on
    // this busy machine (the others then showed it offline again, and it came back again).
    await expect.poll(() => cluster.db.event.count({ where: { vmId: vm.id, action: "host-back" } }), { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    const back = await cluster.db.event.findFirst({ where: { vmId: vm.id, action: "host-back" }, orderBy: { createdAt: "asc" } });
    expect(back?.message).toMatch(/^Host beta is back after \d+ s offline; its reconciler checks this VM again$/);
    // Its reconciler adopted the qemu that ran on: still Running, still one qemu, and it stops.
    expect(await alpha.vm.stop.mutate({ id: vm.id, timeoutSec: 30 })).toMatchObject({ state: "Stopped" });
    expect(qemusOf(vm.id)).toBe(0);
  }, 300_000);

  it("starts beta's VMs marked autostart once beta's machine has booted again, and no others", async () => {
    const beta = cluster.host("beta");
    const imageId = await image();
    const marked = await beta.api.vm.create.mutate({ name: "at-boot", imageId, ...spec, hostId: beta.id, autostart: true });
    const left = await beta.api.vm.create.mutate({ name: "not-at-boot", imageId, ...spec, hostId: beta.id });
    // Beta's Hangar recorded this boot when it started; a crash and a restart with the
    // machine booted meanwhile (another boot id on its row) starts the marked VM.
    expect((await cluster.db.host.findUniqueOrThrow({ where: { id: beta.id } })).bootId).toMatch(/^[0-9a-f-]{36}$/);
    await beta.kill("SIGKILL");
    await cluster.db.host.update({ where: { id: beta.id }, data: { bootId: "an-earlier-boot" } });
    await beta.restart();
    // The start's event is written just after its state: wait for the event.
    await expect
      .poll(() => cluster.db.event.findFirst({ where: { vmId: marked.id, action: "start" } }), { timeout: 60_000, interval: 500 })
      .toMatchObject({ actor: "autostart", ok: true });
    expect((await beta.api.vm.get.query({ id: marked.id })).state).toBe("Running");
    expect((await beta.api.vm.get.query({ id: left.id })).state).toBe("Stopped");
    expect(beta.logTail()).toMatch(/started at boot: at-boot/);
    await beta.api.vm.stop.mutate({ id: marked.id, timeoutSec: 0 });
  }, 300_000);
});
