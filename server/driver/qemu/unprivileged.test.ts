// qemu never runs as root: with Hangar as root (here and in CI) the guest's qemu drops to
// hangar-qemu, and everything Hangar does with it still works (sockets, serial log, pid file,
// live snapshots, suspend and resume).
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshWhenReady } from "../../testing/guest.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../../testing/fixtures.ts";
import { DEFAULT_QEMU_USER } from "./manager.ts";
import { vmFiles } from "./paths.ts";

let t: TestHangar;
let api: Awaited<ReturnType<typeof callerFor>>;
/** The uid qemu must run as: hangar-qemu's when the tests run as root, else the tests' own. */
let expectedUid: number;

beforeAll(async () => {
  t = await createTestHangar();
  api = await callerFor(t.hangar);
  expectedUid = process.getuid?.() === 0 ? Number((await execa("id", ["-u", "--", DEFAULT_QEMU_USER])).stdout) : (process.getuid?.() ?? -1);
});
afterAll(async () => {
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

/** Real, effective, saved and file-system uid of a process. */
function uidsOf(pid: number): number[] {
  const line =
    readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Uid:")) ?? "";
  return line.split(/\s+/).slice(1).filter(Boolean).map(Number);
}

async function sh(vmId: string, script: string): Promise<string> {
  const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
  // As root: the test writes /data, which is root's.
  const result = await sshWhenReady(t.hangar.driverFor(vmId), vm.sshPort ?? 0, ["sh", "-c", script], 90_000, { asRoot: true });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.trim();
}

describe("qemu as an unprivileged user", () => {
  it("runs the guest's qemu without root, and keeps console, snapshots and suspend/resume working", async () => {
    expect(expectedUid).toBeGreaterThan(0);
    const image = await tinyImage(t.hangar);
    const vm = await api.vm.create({ name: "unprivileged", imageId: image.id, cpus: 1, memoryMiB: 256 });
    await api.vm.start({ id: vm.id });
    const driver = t.hangar.driverFor(vm.id);
    const files = vmFiles(t.env.stateDir, vm.id);
    expect(uidsOf(await driver.pid())).toEqual([expectedUid, expectedUid, expectedUid, expectedUid]);
    const dir = statSync(files.dir);
    expect({ mode: dir.mode & 0o777, uid: dir.uid }).toEqual({ mode: 0o700, uid: process.getuid?.() });

    const token = randomBytes(8).toString("hex");
    await sh(vm.id, `echo ${token} > /tmp/marker && echo one > /data/file && sync`);
    expect(readFileSync(files.serialLog, "latin1").length).toBeGreaterThan(0);
    const console = await driver.console();
    console.destroy();

    await api.snapshot.create({ id: vm.id, name: "live-1" });
    await sh(vm.id, "echo two > /data/file && sync");
    await api.snapshot.revert({ id: vm.id, name: "live-1" });
    expect(await sh(vm.id, "cat /data/file")).toBe("one");

    expect((await api.vm.suspend({ id: vm.id })).state).toBe("Suspended");
    expect(await driver.running()).toBe(false);
    expect((await api.vm.start({ id: vm.id })).state).toBe("Running");
    expect(uidsOf(await driver.pid())).toEqual([expectedUid, expectedUid, expectedUid, expectedUid]);
    expect(await sh(vm.id, "cat /tmp/marker")).toBe(token);

    expect((await api.vm.stop({ id: vm.id, timeoutSec: 30 })).state).toBe("Stopped");
    await api.vm.delete({ id: vm.id });
  });
});
