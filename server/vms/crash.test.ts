// The crash matrix: every transient state as a crash leaves it, with qemu alive and dead,
// resolved by the reconciler of a restarted Hangar (same state directory and database):
// the final state, the event saying what was done, at most one qemu, and a VM that works.
import { randomBytes } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDb } from "../db.ts";
import { vmFiles } from "../driver/qemu/paths.ts";
import { withQmp, type QmpClient } from "../driver/qemu/qmp.ts";
import { createHangar, type Hangar, type HangarOptions } from "../hangar.ts";
import { FakeDriver, fakeLocalImage } from "../testing/fake-driver.ts";
import { createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { sshWhenReady } from "../testing/guest.ts";
import { REPO_ROOT } from "../testing/paths.ts";
import { createVm } from "./inventory.ts";
import type { State } from "./state.ts";

/** Live qemu processes of VM `id` on this host: its argv carries `hangar-<id>`. */
async function qemuCount(id: string): Promise<number> {
  let count = 0;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "latin1").catch(() => "");
    if (!cmdline.split("\0").includes(`hangar-${id}`)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "latin1").catch(() => "");
    if (stat && !/\) Z /.test(stat)) count += 1;
  }
  return count;
}

/** A restarted server: new services (own database client) on the same state directory and database. */
async function restarted(t: TestHangar, options: Pick<HangarOptions, "driverFor" | "reconciler"> = {}) {
  const db = createDb(t.env.databaseUrl);
  const hangar = createHangar({ env: t.env, db, localImage: options.driverFor ? fakeLocalImage : undefined, ...options });
  // Its readiness watches read the database: they end before its connection does.
  const close = async () => {
    await hangar.lifecycle.close();
    await db.$disconnect();
  };
  return { hangar, close };
}

async function lastReconcile(hangar: Hangar, vmName: string) {
  return hangar.db.event.findFirstOrThrow({ where: { vmName, actor: "reconciler", action: "reconcile" }, orderBy: { createdAt: "desc" } });
}

interface Case {
  state: "Cloning" | "Starting" | "Stopping" | "Suspending" | "Deleting" | "Deleted";
  alive: boolean;
  /** Suspending: the suspend's saved state is complete in the disk. */
  saved?: boolean;
  /** The saved state in the disk is older than the suspend (an earlier one's, left behind). */
  stale?: boolean;
  to: State | "Gone";
  message: RegExp;
  error: RegExp | null;
  /** Where the VM ends when the rollback is followed by carrying the action out again. */
  then?: State;
}

const cases: Case[] = [
  // The half-made disk goes, then the disk is made again, as the create was about to.
  {
    state: "Cloning",
    alive: false,
    to: "Initial",
    message: /clone interrupted by a restart was rolled back: the half-made disk was removed/,
    error: null,
    then: "Stopped",
  },
  { state: "Cloning", alive: true, to: "Initial", message: /clone interrupted by a restart was rolled back/, error: null, then: "Stopped" },
  { state: "Starting", alive: true, to: "Running", message: /start interrupted by a restart was carried out: qemu runs, so it was adopted/, error: null },
  { state: "Starting", alive: false, to: "Stopped", message: /start interrupted by a restart was rolled back: no qemu runs/, error: /start the VM again/ },
  { state: "Stopping", alive: true, to: "Stopped", message: /stop interrupted by a restart was carried out: qemu still ran, so it was stopped/, error: null },
  { state: "Stopping", alive: false, to: "Stopped", message: /stop interrupted by a restart was carried out: qemu had already exited/, error: null },
  {
    state: "Suspending",
    alive: true,
    saved: true,
    to: "Suspended",
    message: /suspend interrupted by a restart was carried out: its saved state was complete/,
    error: null,
  },
  {
    state: "Suspending",
    alive: true,
    saved: false,
    to: "Running",
    message: /suspend interrupted by a restart was rolled back: its state was not saved/,
    error: /Suspend it again/,
  },
  {
    state: "Suspending",
    alive: false,
    saved: true,
    to: "Suspended",
    message: /suspend interrupted by a restart was carried out: qemu had ended after saving/,
    error: null,
  },
  {
    state: "Suspending",
    alive: false,
    saved: false,
    to: "Stopped",
    message: /suspend interrupted by a restart was rolled back: qemu ended before the state was saved/,
    error: /memory is lost/,
  },
  { state: "Suspending", alive: true, saved: true, stale: true, to: "Running", message: /rolled back: its state was not saved/, error: /Suspend it again/ },
  {
    state: "Suspending",
    alive: false,
    saved: true,
    stale: true,
    to: "Stopped",
    message: /rolled back: qemu ended before the state was saved/,
    error: /memory is lost/,
  },
  { state: "Deleting", alive: true, to: "Gone", message: /delete interrupted by a restart was carried out/, error: null },
  { state: "Deleting", alive: false, to: "Gone", message: /delete interrupted by a restart was carried out/, error: null },
  // Between a delete's Deleted and the removal of its row: the row would stay, undeletable.
  { state: "Deleted", alive: false, to: "Gone", message: /delete interrupted by a restart was carried out/, error: null },
];

describe("crash matrix on the fake driver", () => {
  let t: TestHangar;
  let fake: FakeDriver;

  beforeEach(async () => {
    fake = new FakeDriver();
    t = await createTestHangar({ driverFor: fake.managerFor });
  });
  afterEach(() => t.cleanup());

  /** The persisted state and the host as a crash in `c.state` leaves them. */
  async function crashedIn(c: Case) {
    const { hangar } = t;
    const image = await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    // Made and cloned: for Cloning, the disk stands for the half-made one the crash left.
    const vm = await createVm(hangar, { name: "crashed", imageId: image.id, cpus: 1, memoryMiB: 128 }, "t");
    const host = fake.vm(vm.id);
    if (c.state === "Cloning") {
      host.running = c.alive;
    } else {
      if (c.alive || c.state === "Stopping" || c.state === "Suspending") await hangar.lifecycle.startVm(vm.id, "t");
      host.saved = c.saved ?? false;
      if (c.stale) host.savedAt = new Date(Date.now() - 60_000);
      if (!c.alive) Object.assign(host, { running: false, pid: 0 });
    }
    const lost = c.state === "Starting" ? { pid: null, sshPort: null } : {};
    await hangar.db.vm.update({ where: { id: vm.id }, data: { state: c.state, ...lost } });
    return { id: vm.id, starts: host.calls.filter((call) => call === "start").length };
  }

  const named = cases.map((c) => {
    const saved = c.saved === undefined ? "" : c.stale ? ", only an older state saved" : c.saved ? ", state saved" : ", nothing saved";
    return { ...c, name: `${c.state}, qemu ${c.alive ? "alive" : "dead"}${saved} -> ${c.to}` };
  });

  it.each(named)("$name", async (c) => {
    const vm = await crashedIn(c);
    const { hangar, close } = await restarted(t, { driverFor: fake.managerFor });
    try {
      await hangar.reconciler.reconcileAll();
      const row = await hangar.db.vm.findUnique({ where: { id: vm.id } });
      const event = await lastReconcile(hangar, "crashed");
      expect([event.fromState, event.toState]).toEqual([c.state, c.to === "Gone" ? "Deleted" : c.to]);
      if (!c.then) expect(event.ok).toBe(c.error === null);
      expect(event.message).toMatch(c.message);
      const host = fake.vm(vm.id);
      // Never started twice: an adopted qemu is the one that ran.
      expect(host.calls.filter((call) => call === "start")).toHaveLength(vm.starts);
      if (c.to === "Gone") {
        expect(row).toBeNull();
        expect(event.vmId).toBeNull();
        expect([host.running, host.exists]).toEqual([false, false]);
        return;
      }
      const end = c.then ?? c.to;
      expect(row?.state).toBe(end);
      if (c.error) expect(row?.error).toMatch(c.error);
      else expect(row?.error).toBeNull();
      expect(host.running).toBe(end === "Running");
      expect(host.exists).toBe(end !== "Initial");
      // A second pass finds nothing left to do.
      const events = await hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } });
      await hangar.reconciler.reconcileAll();
      expect(await hangar.db.event.count({ where: { vmId: vm.id, actor: "reconciler" } })).toBe(events);

      // And the VM works: it runs again, and the next successful action clears the error.
      if (end === "Running") await hangar.lifecycle.stopVm(vm.id, 1000, "t");
      await hangar.lifecycle.startVm(vm.id, "t");
      const after = await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
      expect([after.state, after.error, host.running]).toEqual(["Running", null, true]);
      // A resume (then, in the background, the guest's clock set through its agent).
      if (c.to === "Suspended") expect(host.calls.filter((call) => call !== "clock").at(-1)).toBe("resume");
    } finally {
      await close();
    }
  });
});

describe("crash matrix on the real tiny guest", () => {
  let t: TestHangar;
  let vmId = "";

  beforeAll(async () => {
    t = await createTestHangar();
  });
  afterAll(async () => {
    for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
    await t.cleanup();
  });

  /** The one VM of these cases, Running and answering SSH (made and booted when needed). */
  async function runningVm(): Promise<{ id: string; name: string; sshPort: number }> {
    if (!vmId) {
      const image = await tinyImage(t.hangar);
      vmId = (await createVm(t.hangar, { name: "crash-real", imageId: image.id, cpus: 1, memoryMiB: 256 }, "t")).id;
    }
    if ((await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } })).state !== "Running") await t.hangar.lifecycle.startVm(vmId, "t");
    const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
    await sshWhenReady(t.hangar.driverFor(vmId), vm.sshPort ?? 0, ["true"]);
    return { id: vm.id, name: vm.name, sshPort: vm.sshPort ?? 0 };
  }

  async function sh(script: string): Promise<string> {
    const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
    const result = await sshWhenReady(t.hangar.driverFor(vmId), vm.sshPort ?? 0, ["sh", "-c", script]);
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout.trim();
  }

  const qmp = <T>(fn: (client: QmpClient) => Promise<T>) => withQmp(vmFiles(t.env.stateDir, vmId).qmpSocket, fn);

  async function reconcileAfterRestart(options: Pick<HangarOptions, "reconciler"> = {}) {
    const { hangar, close } = await restarted(t, options);
    try {
      await hangar.reconciler.reconcileAll();
    } finally {
      await close();
    }
    return t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
  }

  it("Starting with qemu alive: adopted as Running, the same qemu, reachable", async () => {
    const vm = await runningVm();
    const pid = await t.hangar.driverFor(vm.id).pid();
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting", pid: null, sshPort: null } });
    const row = await reconcileAfterRestart();
    expect([row.state, row.pid, row.sshPort, row.error]).toEqual(["Running", pid, vm.sshPort, null]);
    expect((await lastReconcile(t.hangar, vm.name)).message).toMatch(/start interrupted by a restart was carried out/);
    expect(await qemuCount(vm.id)).toBe(1);
    expect(await sh("echo up")).toBe("up");
  });

  it("Starting with qemu paused (a resume of file-kept memory cut short before it continued): adopted and carried on", async () => {
    const vm = await runningVm();
    await qmp((q) => q.execute("stop"));
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Starting", pid: null, sshPort: null } });
    const row = await reconcileAfterRestart();
    expect([row.state, row.sshPort]).toEqual(["Running", vm.sshPort]);
    expect(await qmp((q) => q.execute("query-status"))).toMatchObject({ status: "running" });
    expect(await sh("echo carried-on")).toBe("carried-on");
  });

  it("Suspending with qemu paused and no saved state: rolled back, the guest runs on", async () => {
    const vm = await runningVm();
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Suspending" } });
    // The suspend paused the guest; the server died before the save began.
    await qmp((q) => q.execute("stop"));
    const row = await reconcileAfterRestart();
    expect([row.state, row.sshPort]).toEqual(["Running", vm.sshPort]);
    expect(row.error).toMatch(/rolled back; the VM runs on/);
    const event = await lastReconcile(t.hangar, vm.name);
    expect([event.fromState, event.toState]).toEqual(["Suspending", "Running"]);
    expect(event.message).toMatch(/rolled back: its state was not saved, so the guest runs on/);
    expect(await qmp((q) => q.execute("query-status"))).toMatchObject({ status: "running" });
    expect(await qemuCount(vm.id)).toBe(1);
    expect(await sh("echo still-here")).toBe("still-here");
  });

  it("Suspending with qemu paused after a complete save: carried out, and it resumes with its memory", async () => {
    const vm = await runningVm();
    const token = randomBytes(8).toString("hex");
    await sh(`echo ${token} > /tmp/marker`);
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Suspending" } });
    // The suspend paused the guest and saved it; the server died before it quit qemu.
    await qmp(async (q) => {
      await q.execute("stop");
      expect((await q.human("savevm hangar-suspend", 300_000)).trim()).toBe("");
    });
    const row = await reconcileAfterRestart();
    expect([row.state, row.pid, row.error]).toEqual(["Suspended", null, null]);
    expect((await lastReconcile(t.hangar, vm.name)).message).toMatch(/suspend interrupted by a restart was carried out: its saved state was complete/);
    expect(await qemuCount(vm.id)).toBe(0);

    await t.hangar.lifecycle.startVm(vm.id, "t");
    expect(await sh("cat /tmp/marker")).toBe(token);
    expect(await qemuCount(vm.id)).toBe(1);
  });

  it("Stopping with qemu alive: the stop is carried out, and the VM starts again", async () => {
    const vm = await runningVm();
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Stopping" } });
    const row = await reconcileAfterRestart();
    expect([row.state, row.pid, row.error]).toEqual(["Stopped", null, null]);
    expect((await lastReconcile(t.hangar, vm.name)).message).toMatch(/stop interrupted by a restart was carried out: qemu still ran, so it was stopped/);
    expect(await qemuCount(vm.id)).toBe(0);
    await t.hangar.lifecycle.startVm(vm.id, "t");
    expect(await sh("echo again")).toBe("again");
    expect(await qemuCount(vm.id)).toBe(1);
  });

  it("a restart cut short in its stop: carried out, and the VM boots again in a new qemu", async () => {
    const vm = await runningVm();
    const before = (await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).pid;
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state: "Stopping", restartPending: true } });
    const row = await reconcileAfterRestart();
    expect([row.state, row.restartPending]).toEqual(["Running", false]);
    expect(row.pid).not.toBe(before);
    const restart = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "restart" }, orderBy: { createdAt: "desc" } });
    expect([restart.ok, restart.message]).toEqual([true, expect.stringMatching(/^A restart interrupted by a restart of Hangar was completed/)]);
    expect(await sh("echo restarted")).toBe("restarted");
    expect(await qemuCount(vm.id)).toBe(1);
  });

  it("a server killed with SIGKILL right after it persisted Stopping: a restarted one carries the stop out", async () => {
    const vm = await runningVm();
    // Paused, the guest cannot act on the power button: its qemu surely outlives the server.
    await qmp((q) => q.execute("stop"));
    const child = execa(
      "node",
      ["--import", "tsx", path.join(REPO_ROOT, "server", "testing", "crash-child.ts"), t.env.stateDir, t.env.databaseUrl, t.env.guestDir, vm.id],
      {
        cwd: REPO_ROOT,
        reject: false,
        all: true,
      },
    );
    await expect.poll(async () => (await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state, { timeout: 60_000, interval: 5 }).toBe("Stopping");
    child.kill("SIGKILL");
    const exit = await child;
    expect(exit.signal, exit.all).toBe("SIGKILL");
    expect(await qemuCount(vm.id)).toBe(1);

    // The paused guest ignores the button again: the restarted server's stop is forced.
    const row = await reconcileAfterRestart({ reconciler: { stopTimeoutMs: 2000 } });
    expect([row.state, row.pid]).toEqual(["Stopped", null]);
    const event = await lastReconcile(t.hangar, vm.name);
    expect([event.fromState, event.toState, event.ok]).toEqual(["Stopping", "Stopped", true]);
    expect(event.message).toMatch(/carried out: qemu still ran, so it was stopped/);
    expect(await qemuCount(vm.id)).toBe(0);

    await t.hangar.lifecycle.startVm(vm.id, "t");
    expect(await sh("echo after-crash")).toBe("after-crash");
    expect(await qemuCount(vm.id)).toBe(1);
    await t.hangar.lifecycle.stopVm(vm.id, 0, "t");
    await t.hangar.lifecycle.deleteVm(vm.id, "t");
    expect(await qemuCount(vm.id)).toBe(0);
  });
});
