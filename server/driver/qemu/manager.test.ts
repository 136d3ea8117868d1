// The real qemu driver booting the real tiny guest.
import { mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { readdir, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { execa } from "execa";
import { afterAll, describe, expect, inject, it } from "vitest";
import { sshWhenReady } from "../../testing/guest.ts";
import { AlreadyRunningError, NotRunningError } from "../manager.ts";
import { QemuManager } from "./manager.ts";
import { chooseAccel } from "./accel.ts";

const guestDir = inject("guestDir");
const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-driver-"));
const boot = {
  kernel: path.join(guestDir, "vmlinuz"),
  initrd: path.join(guestDir, "initrd.img"),
  cmdline: readFileSync(path.join(guestDir, "cmdline"), "utf8").trim(),
};
const accel = () => chooseAccel(stateDir, boot.kernel).then((d) => d.accel);
const managers: QemuManager[] = [];

afterAll(async () => {
  for (const m of managers) await m.kill();
  rmSync(stateDir, { recursive: true, force: true });
});

function manager(id: string) {
  // The built guest's directory stands in for the image store here.
  const m = new QemuManager(id, { stateDir, imagesDir: guestDir, accel });
  managers.push(m);
  return m;
}

async function qemuProcessesFor(id: string): Promise<number> {
  let count = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await import("node:fs/promises").then((fs) => fs.readFile(`/proc/${pid}/cmdline`, "latin1")).catch(() => "");
    if (cmdline.split("\0").includes(`hangar-${id}`)) count++;
  }
  return count;
}

describe("QemuManager with the tiny guest", () => {
  it("creates, starts, answers SSH, stops through ACPI and deletes", async () => {
    const m = manager("drv1");
    const output = new PassThrough();
    let log = "";
    output.on("data", (chunk: Buffer) => (log += chunk.toString()));
    m.setOutput(output);

    await m.create(path.join(guestDir, "disk.qcow2"));
    expect(await m.exists()).toBe(true);
    expect(statSync(m.files.sshKey).mode & 0o777).toBe(0o600);
    expect(statSync(m.files.dir).mode & 0o777).toBe(0o700);
    await expect(m.create(path.join(guestDir, "disk.qcow2"))).rejects.toThrow(/already/);

    const { publicKey } = await m.identity();
    const result = await m.start({
      userData: "#cloud-config\nruncmd:\n  - echo ran > /tmp/runcmd-ok\n",
      cpus: 1,
      memoryMiB: 256,
      sshAuthorizedKey: publicKey,
      monitor: false,
      boot,
      ports: [{ hostPort: 0, guestPort: 8080 }],
      sshHostPort: 0,
      hostname: "drv-one",
      instanceId: "drv1",
    });
    expect(result.pid).toBeGreaterThan(0);
    expect(await m.running()).toBe(true);
    expect(await m.pid()).toBe(result.pid);
    expect(result.ports.get(8080)).toBeGreaterThan(0);
    expect(await m.forwards()).toContainEqual({ hostPort: result.sshPort, guestPort: 22 });

    const uname = await sshWhenReady(m, result.sshPort, ["uname", "-a"]);
    expect(uname.stdout).toMatch(/^Linux drv-one /);
    const { privateKeyFile } = await m.identity();
    const quoted = await m.shell(["sh", "-c", "echo $((6*7)) 'it''s'; cat /tmp/runcmd-ok"], result.sshPort, privateKeyFile);
    expect(quoted.stdout).toBe("42 its\nran\n");
    const failing = await m.shell(["sh", "-c", "exit 3"], result.sshPort, privateKeyFile);
    expect(failing.exitCode).toBe(3);

    await expect(
      m.start({ userData: "", cpus: 1, memoryMiB: 256, sshAuthorizedKey: publicKey, monitor: false, boot, ports: [], sshHostPort: 0, hostname: "x", instanceId: "x" }),
    ).rejects.toBeInstanceOf(AlreadyRunningError);

    await m.stop(30_000);
    expect(await m.running()).toBe(false);
    expect(await qemuProcessesFor("drv1")).toBe(0);
    expect(log).toContain("sent the ACPI power button");
    expect(log).toContain("qemu powered off");
    expect(await m.serialTail(100_000)).toContain("hangar-guest: ssh ready ip=10.0.2.15 hostname=drv-one instance-id=drv1");
    await expect(m.stop(1000)).rejects.toBeInstanceOf(NotRunningError);

    await m.delete();
    expect(await m.exists()).toBe(false);
  });

  it("kills a guest that ignores the power button once the timeout passes", async () => {
    const m = manager("drv2");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    // Stopped before the guest has loaded its ACPI button driver: the press is lost.
    await m.start({ userData: "", cpus: 1, memoryMiB: 128, sshAuthorizedKey: publicKey, monitor: false, boot: { ...boot, cmdline: `${boot.cmdline} init=/bin/sh` }, ports: [], sshHostPort: 0, hostname: "drv-two", instanceId: "drv2" });
    await m.stop(500);
    expect(await m.running()).toBe(false);
    expect(await qemuProcessesFor("drv2")).toBe(0);
    await m.delete();
  });

  it("backs an overlay only onto a file of the image store", async () => {
    const outside = path.join(stateDir, "outside.qcow2");
    await execa("qemu-img", ["create", "-q", "-f", "qcow2", outside, "1M"]);
    const link = path.join(stateDir, "store");
    await symlink(guestDir, link);
    for (const base of [outside, "/etc/passwd", "disk.qcow2"]) {
      const m = manager("drv-out");
      await expect(m.create(base)).rejects.toThrow(/not a file in Hangar's image store/);
      expect(await m.exists()).toBe(false);
    }
    const m = manager("drv-store");
    await m.create(path.join(link, "disk.qcow2"));
    const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", "--", m.files.disk])).stdout) as Record<string, unknown>;
    expect(info["backing-filename"]).toBe(path.join(realpathSync(guestDir), "disk.qcow2"));
    await m.delete();
  });

  it("leaves no process behind when qemu cannot start", async () => {
    const m = manager("drv3");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    await expect(
      m.start({ userData: "", cpus: 1, memoryMiB: 128, sshAuthorizedKey: publicKey, monitor: false, boot: { kernel: path.join(stateDir, "no-such-kernel") }, ports: [], sshHostPort: 0, hostname: "x", instanceId: "x" }),
    ).rejects.toThrow(/qemu failed to start/);
    expect(await m.running()).toBe(false);
    expect(await qemuProcessesFor("drv3")).toBe(0);
    await m.delete();
  });
});
