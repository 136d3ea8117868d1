// Two real Hangar processes on one PostgreSQL database (server/testing/cluster.ts), each with
// its own host name, state and images directories and port: what one host does reaches the
// other. Changes made on beta arrive live on alpha; alpha opens the console of beta's VM; an
// image only alpha holds is fetched by beta for a VM there; a sign-in on alpha holds on beta.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import { execa } from "execa";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { z } from "zod";
import type { AppRouter } from "../api/root.ts";
import { TRPC_WS_PATH } from "../api/ws.ts";
import { storeName } from "../images/copies.ts";
import { CLUSTER_ADMIN, startCluster, type Cluster } from "../testing/cluster.ts";
import type { LiveChange } from "../vms/changes.ts";

let cluster: Cluster;
const closers: (() => void)[] = [];

beforeAll(async () => {
  cluster = await startCluster({ names: ["alpha", "beta"] });
}, 600_000);
afterAll(async () => {
  for (const close of closers) close();
  await cluster?.close();
}, 180_000);

const alpha = () => cluster.host("alpha");
const beta = () => cluster.host("beta");

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function tinyImageId(): Promise<string> {
  const image = (await beta().api.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("no hangar-tiny image");
  return image.id;
}

describe("a cluster of two hosts", () => {
  let vmId = "";

  it("delivers a change made on beta to a vm.onChange subscription on alpha", async () => {
    class WithToken extends WebSocket {
      constructor(url: string | URL) {
        super(url, { headers: { authorization: `Bearer ${cluster.token}` } });
      }
    }
    const client = createWSClient({
      url: `${alpha().url.replace("http", "ws")}${TRPC_WS_PATH}`,
      WebSocket: WithToken as unknown as typeof globalThis.WebSocket,
    });
    closers.push(() => void client.close());
    const live = createTRPCClient<AppRouter>({ links: [wsLink({ client, transformer: superjson })] });
    const changes: LiveChange[] = [];
    const started = new Promise<void>((resolve) => {
      const subscription = live.vm.onChange.subscribe(undefined, {
        onStarted: () => resolve(),
        onData: ({ data }) => {
          if (!("caughtUp" in data)) changes.push(data);
        },
      });
      closers.push(() => subscription.unsubscribe());
    });
    await started;

    const vm = await beta().api.vm.create.mutate({ name: "made-on-beta", imageId: await tinyImageId(), cpus: 1, memoryMiB: 256, hostId: beta().id });
    vmId = vm.id;
    expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(beta().id);
    await until("beta's new VM, Stopped, on alpha", () => changes.find((c) => c.vmId === vm.id && c.state === "Stopped"));
    await beta().api.vm.start.mutate({ id: vm.id });
    const running = await until("beta's VM Running on alpha", () => changes.find((c) => c.vmId === vm.id && c.state === "Running"));
    // Alpha read the row itself: the change carries beta's VM as the list shows it.
    expect(running.row).toMatchObject({ id: vm.id, name: "made-on-beta", state: "Running" });
    // And the event beta recorded for it, read by alpha from the id the notification named.
    expect(running.event).toMatchObject({ id: running.eventId, action: "start", ok: true, vmName: "made-on-beta", toState: "Running" });
    expect(changes.filter((c) => c.vmId === vm.id).map((c) => c.state)).toEqual(["Initial", "Cloning", "Stopped", "Starting", "Running"]);
  });

  it("opens the console of beta's VM through alpha with a ticket alpha issued", async () => {
    const { path: wsPath } = await alpha().api.terminal.ticket.mutate({ vmId, kind: "console" });
    const ws = new WebSocket(`${alpha().url.replace("http", "ws")}${wsPath}`, { headers: { origin: alpha().url } });
    closers.push(() => ws.terminate());
    let text = "";
    ws.on("message", (data: Buffer, binary: boolean) => {
      if (binary) text += data.toString("utf8");
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    await until("the login prompt of beta's VM", () => text.includes("login:"), 120_000);
    ws.send(Buffer.from("root\n"), { binary: true });
    await until("a root shell", () => text.includes("#"), 30_000);
    // Typed on alpha, run in beta's guest, its answer back on alpha.
    ws.send(Buffer.from("echo $((6*7))x\n"), { binary: true });
    await until("the guest's answer", () => text.includes("42x"), 30_000);
    ws.close();
  });

  it("moves beta's Stopped VM to alpha: disk, snapshots and key go along, and it runs there", async () => {
    await beta().api.vm.wait.query({ id: vmId, for: "ready", timeoutSec: 300 });
    const wrote = await beta().api.vm.exec.mutate({ id: vmId, command: ["sh", "-c", "echo came-along > /data/marker && sync"], asRoot: true });
    expect(wrote.exitCode, wrote.stderr).toBe(0);
    const refusal = (call: Promise<unknown>) =>
      call.then(
        () => "moved",
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    expect(await refusal(alpha().api.vm.move.mutate({ id: vmId, hostId: alpha().id }))).toContain("needs it Stopped");
    await beta().api.vm.stop.mutate({ id: vmId });
    await beta().api.snapshot.create.mutate({ id: vmId, name: "before-move" });
    expect(await refusal(alpha().api.vm.move.mutate({ id: vmId, hostId: beta().id }))).toContain("is on host beta already");
    expect(await refusal(alpha().api.vm.move.mutate({ id: vmId, hostId: "nosuchhost" }))).toContain(`No host with id "nosuchhost"`);

    // Asked on alpha, run by beta (the VM's host), taken by alpha.
    const moved = await alpha().api.vm.move.mutate({ id: vmId, hostId: alpha().id });
    expect(moved).toMatchObject({ id: vmId, state: "Stopped", hostId: alpha().id });
    expect(existsSync(path.join(beta().stateDir, "vms", vmId))).toBe(false);
    const disk = path.join(alpha().stateDir, "vms", vmId, "disk.qcow2");
    const { stdout } = await execa("qemu-img", ["info", "--output=json", "--", disk]);
    const info = z.object({ "backing-filename": z.string(), snapshots: z.array(z.object({ name: z.string() })) }).parse(JSON.parse(stdout));
    // On alpha's own copy of the image, with its snapshot.
    expect(path.dirname(info["backing-filename"])).toBe(path.join(alpha().stateDir, "images"));
    expect(info.snapshots.map((s) => s.name)).toEqual(["before-move"]);
    await until("the move's marker gone", () => !existsSync(path.join(alpha().stateDir, "vms", vmId, "moved-from")), 30_000);
    const { events } = await beta().api.vm.events.query({ vmId, limit: 1 });
    expect(events[0]).toMatchObject({ action: "move", ok: true });
    expect(events[0]?.message).toMatch(/^Moved from host beta to host alpha \(\d+ MiB in [\d.]+ s\)$/);

    // Started through beta, it runs on alpha with what its guest wrote on beta, reached with the key it had there.
    expect((await beta().api.vm.start.mutate({ id: vmId })).state).toBe("Running");
    expect(existsSync(path.join(alpha().stateDir, "vms", vmId, "qemu.pid"))).toBe(true);
    await alpha().api.vm.wait.query({ id: vmId, for: "ready", timeoutSec: 300 });
    expect((await alpha().api.vm.exec.mutate({ id: vmId, command: ["cat", "/data/marker"] })).stdout).toBe("came-along\n");
  });

  it("evacuates alpha: its Running VM runs on beta, a Stopped one moves, nothing new goes to alpha; restore brings them back", async () => {
    const parked = await alpha().api.vm.create.mutate({ name: "parked", imageId: await tinyImageId(), cpus: 1, memoryMiB: 256, hostId: alpha().id });

    // Asked on beta, run by alpha (the host evacuated); a second evacuation meanwhile is refused.
    const [evacuation, again] = await Promise.allSettled([
      beta().api.host.evacuate.mutate({ id: alpha().id }),
      sleep(500).then(() => alpha().api.host.evacuate.mutate({ id: alpha().id })),
    ]);
    expect(again).toMatchObject({ status: "rejected", reason: { message: "Host alpha is being evacuated already; try again once that is done." } });
    if (evacuation.status === "rejected") throw evacuation.reason;
    const evacuated = evacuation.value;
    const name = (await alpha().api.vm.get.query({ id: vmId })).name;
    expect(evacuated).toEqual({
      host: "alpha",
      moved: [
        { id: vmId, name, to: "beta", restarted: true, problem: null },
        { id: parked.id, name: "parked", to: "beta", restarted: false, problem: null },
      ].sort((a, b) => a.name.localeCompare(b.name)),
      stayed: [],
    });
    const rows = await cluster.db.vm.findMany({
      where: { id: { in: [vmId, parked.id] } },
      select: { id: true, hostId: true, evacuatedFrom: true, state: true },
    });
    expect(rows.sort((a, b) => Number(b.id === vmId) - Number(a.id === vmId))).toEqual([
      { id: vmId, hostId: beta().id, evacuatedFrom: alpha().id, state: "Running" },
      { id: parked.id, hostId: beta().id, evacuatedFrom: alpha().id, state: "Stopped" },
    ]);
    const hosts = await alpha().api.host.list.query();
    expect(hosts.find((h) => h.name === "alpha")?.maintenanceSince).toBeInstanceOf(Date);
    expect(hosts.find((h) => h.name === "beta")?.maintenanceSince).toBeNull();
    await expect(
      beta().api.vm.create.mutate({ name: "not-on-alpha", imageId: await tinyImageId(), cpus: 1, memoryMiB: 256, hostId: alpha().id }),
    ).rejects.toThrow("Host alpha is in maintenance");
    await expect(alpha().api.vm.move.mutate({ id: parked.id, hostId: alpha().id })).rejects.toThrow("Host alpha is in maintenance");
    await beta().api.vm.wait.query({ id: vmId, for: "ready", timeoutSec: 300 });
    expect((await beta().api.vm.exec.mutate({ id: vmId, command: ["cat", "/data/marker"] })).stdout).toBe("came-along\n");
    const audit = await alpha().api.audit.list.query({ action: "host-evacuate" });
    expect(audit.events[0]?.message).toBe("Evacuated host alpha: 2 VMs moved (1 started again there), 0 stayed");

    const restored = await beta().api.host.restore.mutate({ id: alpha().id });
    expect(restored.moved.map((m) => [m.id, m.to, m.restarted]).sort()).toEqual(
      [
        [vmId, "alpha", true],
        [parked.id, "alpha", false],
      ].sort(),
    );
    expect(await cluster.db.vm.findMany({ where: { id: { in: [vmId, parked.id] } }, select: { hostId: true, evacuatedFrom: true } })).toEqual([
      { hostId: alpha().id, evacuatedFrom: null },
      { hostId: alpha().id, evacuatedFrom: null },
    ]);
    expect((await alpha().api.host.list.query()).find((h) => h.name === "alpha")?.maintenanceSince).toBeNull();
    await alpha().api.vm.delete.mutate({ id: parked.id });
  });

  it("moves a Suspended VM with its saved state: it resumes on the other host where it was", async () => {
    await alpha().api.vm.wait.query({ id: vmId, for: "ready", timeoutSec: 300 });
    // Only in the guest's memory (its root is a RAM disk): a fresh boot would not have it.
    expect((await alpha().api.vm.exec.mutate({ id: vmId, command: ["sh", "-c", "echo in-memory > /tmp/memory-marker"] })).exitCode).toBe(0);
    await alpha().api.vm.suspend.mutate({ id: vmId });
    const moved = await beta().api.vm.move.mutate({ id: vmId, hostId: beta().id });
    expect(moved).toMatchObject({ state: "Suspended", hostId: beta().id });
    expect(existsSync(path.join(alpha().stateDir, "vms", vmId))).toBe(false);
    const { events } = await beta().api.vm.events.query({ vmId, limit: 1 });
    expect(events[0]?.message).toMatch(/^Moved from host alpha to host beta \(\d+ MiB in [\d.]+ s\) with its saved state: a start resumes it there$/);
    expect((await alpha().api.vm.start.mutate({ id: vmId })).state).toBe("Running");
    expect((await beta().api.vm.exec.mutate({ id: vmId, command: ["cat", "/tmp/memory-marker", "/data/marker"] })).stdout).toBe("in-memory\ncame-along\n");
  });

  it("fetches an image only alpha holds when a VM on beta needs it", async () => {
    // A disk only alpha has: the tiny guest recompressed (other bytes, another sha256).
    const guestDir = alpha().env.HANGAR_GUEST_DIR ?? "";
    const source = path.join(alpha().stateDir, "images", "incoming");
    mkdirSync(source, { recursive: true });
    await execa("qemu-img", ["convert", "-c", "-O", "qcow2", "--", path.join(guestDir, "disk.qcow2"), path.join(source, "disk.qcow2")]);
    for (const file of ["vmlinuz", "initrd.img"]) copyFileSync(path.join(guestDir, file), path.join(source, file));
    const image = await alpha().api.image.import.mutate({
      name: "only-on-alpha",
      path: "incoming/disk.qcow2",
      kernel: "incoming/vmlinuz",
      initrd: "incoming/initrd.img",
      cmdline: readFileSync(path.join(guestDir, "cmdline"), "utf8").trim(),
    });
    const row = await cluster.db.image.findUniqueOrThrow({ where: { id: image.id }, include: { copies: true } });
    expect(row.copies.map((c) => c.hostId)).toEqual([alpha().id]);
    const disk = storeName(row.path) ?? "";
    const betaDisk = path.join(beta().stateDir, "images", disk);
    expect(existsSync(betaDisk)).toBe(false);

    const vm = await beta().api.vm.create.mutate({ name: "fetched-on-beta", imageId: image.id, cpus: 1, memoryMiB: 256, hostId: beta().id });
    expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(beta().id);
    expect(readFileSync(betaDisk).equals(readFileSync(path.join(alpha().stateDir, "images", disk)))).toBe(true);
    const copies = await cluster.db.imageCopy.findMany({ where: { imageId: image.id } });
    expect(copies.map((c) => c.hostId).sort()).toEqual([alpha().id, beta().id].sort());
    // Beta's VM stands on beta's own copy, never on a path of alpha's.
    const { stdout } = await execa("qemu-img", ["info", "--output=json", "--", path.join(beta().stateDir, "vms", vm.id, "disk.qcow2")]);
    expect(JSON.parse(stdout)).toMatchObject({ "backing-filename": betaDisk });
    const started = await beta().api.vm.start.mutate({ id: vm.id });
    expect(started.state).toBe("Running");
  });

  it("accepts on beta a session cookie signed in on alpha", async () => {
    const signIn = await fetch(`${alpha().url}/api/auth/sign-in/email`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: alpha().url },
      body: JSON.stringify(CLUSTER_ADMIN),
    });
    expect(signIn.ok).toBe(true);
    const cookie = signIn.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    const me = async (host: string, withCookie: string) => {
      const response = await fetch(`${host}/api/trpc/account.me`, { headers: { cookie: withCookie } });
      const body: unknown = await response.json();
      return JSON.stringify(body);
    };
    expect(await me(beta().url, cookie)).toContain(CLUSTER_ADMIN.email);
    // The cookie is what carries it: beta knows nobody without one, or with a forged one.
    expect(await me(beta().url, "")).not.toContain(CLUSTER_ADMIN.email);
    expect(await me(beta().url, cookie.replace(/=([^.;]*)\./, "=forged."))).not.toContain(CLUSTER_ADMIN.email);
  });
});
