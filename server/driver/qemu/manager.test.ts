// The real qemu driver booting the real tiny guest.
import { mkdtempSync, realpathSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { readdir, readFile, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { execa } from "execa";
import { afterAll, describe, expect, inject, it } from "vitest";
import { sshWhenReady, tinyGuestBoot } from "../../testing/guest.ts";
import { AlreadyRunningError, DiskHasSnapshotsError, DiskShrinkError, HostPortTakenError, NotRunningError, type StartOptions } from "../manager.ts";
import { startOutsideHost } from "../../testing/outside-host.ts";
import { applyGuestFirewall } from "./guest-firewall.ts";
import { QemuManager, SUSPEND_TAG, qemuRunAs } from "./manager.ts";
import { withQmp } from "./qmp.ts";
import { chooseAccel } from "./accel.ts";

const guestDir = inject("guestDir");
const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-driver-"));
const boot = tinyGuestBoot(guestDir);
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

/** How much of a qemu's guest memory (its one mapping of that size) is resident, in MiB. */
async function guestMemoryResidentMiB(pid: number, memoryMiB: number): Promise<number> {
  const smaps = await readFile(`/proc/${pid}/smaps`, "utf8");
  const sizeLine = new RegExp(`^Size:\\s+${memoryMiB * 1024} kB$`);
  const lines = smaps.split("\n");
  const at = lines.findIndex((line) => sizeLine.test(line));
  const rss = lines.slice(at).find((line) => line.startsWith("Rss:"));
  if (at < 0 || !rss) throw new Error(`qemu ${pid} maps no ${memoryMiB} MiB of guest memory`);
  return Number(rss.split(/\s+/)[1]) / 1024;
}

/** The tiny guest, isolated, without forwards or user data; each test changes what it is about. */
function startOptions(sshAuthorizedKey: string, changes: Partial<StartOptions> = {}): StartOptions {
  return {
    userData: "",
    cpus: 1,
    memoryMiB: 256,
    sshAuthorizedKey,
    monitor: false,
    boot,
    ports: [],
    sshHostPort: 0,
    network: { mode: "isolated" },
    hostname: "x",
    instanceId: "x",
    ...changes,
  };
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
    const result = await m.start(
      startOptions(publicKey, {
        userData: "#cloud-config\nruncmd:\n  - echo ran > /tmp/runcmd-ok\n",
        ports: [{ hostPort: 0, guestPort: 8080 }],
        hostname: "drv-one",
        instanceId: "drv1",
      }),
    );
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
    // Free page reporting: what the guest leaves free after its boot goes back to the host.
    await expect.poll(() => guestMemoryResidentMiB(result.pid, 256), { timeout: 60_000 }).toBeLessThan(192);

    await expect(m.start(startOptions(publicKey))).rejects.toBeInstanceOf(AlreadyRunningError);

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

  it("nat reaches out but not into this host, isolated does not reach out; forwards come and go while it runs; SSH keeps its port", async () => {
    // Somewhere outside to reach (a host in its own network namespace), and a service that
    // listens only on this host's loopback, which 10.0.2.2 stands for in user networking:
    // the guest firewall keeps guests out of it.
    const outside = await startOutsideHost();
    const local = http.createServer((_req, res) => res.end("a host-only service\n"));
    await new Promise<void>((resolve) => local.listen(0, "127.0.0.1", resolve));
    const localPort = (local.address() as net.AddressInfo).port;
    const qemuUser = await qemuRunAs();
    expect(qemuUser, "the tests run as root, as CI does: qemu runs as its own user").toBe("hangar-qemu");
    expect(await applyGuestFirewall(qemuUser ?? "")).toEqual({ applied: true });
    const m = manager("drv4");
    try {
      await m.create(path.join(guestDir, "disk.qcow2"));
      const { publicKey, privateKeyFile } = await m.identity();
      const options = startOptions(publicKey, { memoryMiB: 192, hostname: "drv-four", instanceId: "drv4" });
      const first = await m.start({ ...options, network: { mode: "nat" } });
      await sshWhenReady(m, first.sshPort, ["true"]);
      const run = async (script: string) => (await m.shell(["sh", "-c", script], first.sshPort, privateKeyFile)).stdout;
      expect(await run("ip route show default")).toContain("via 10.0.2.2");
      expect(await run("cat /etc/resolv.conf")).toContain("nameserver 10.0.2.3");
      // busybox's static wget crashes on name service lookups; nc speaks plain HTTP/1.0.
      const get = (address: string, port: number) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${address} ${port}`;
      expect(await run(get(outside.address, outside.port))).toContain(outside.greeting);
      expect(await run(get("10.0.2.2", localPort))).not.toContain("a host-only service");

      // A forward added while it runs answers, and is gone once removed.
      await run("mkdir -p /tmp/www && echo served by the guest > /tmp/www/index.html && httpd -p 8080 -h /tmp/www");
      const hostPort = await m.addForward({ hostPort: 0, guestPort: 8080 });
      expect((await m.forwards()).map((f) => f.guestPort).sort()).toEqual([22, 8080]);
      expect(await (await fetch(`http://127.0.0.1:${hostPort}/`)).text()).toBe("served by the guest\n");
      await m.removeForward(hostPort);
      expect((await m.forwards()).map((f) => f.guestPort)).toEqual([22]);
      await expect(fetch(`http://127.0.0.1:${hostPort}/`)).rejects.toThrow();

      // Started again, isolated: the same SSH port while it is free, and no way out.
      await m.stop(30_000);
      const second = await m.start({ ...options, network: { mode: "isolated" }, sshPreferredPort: first.sshPort });
      expect(second.sshPort).toBe(first.sshPort);
      await sshWhenReady(m, second.sshPort, ["true"]);
      const reached = await m.shell(["sh", "-c", get(outside.address, outside.port)], second.sshPort, privateKeyFile);
      expect(reached.stdout).not.toContain(outside.greeting);
      // Paused (a pool's Paused staging), it is continued so it sees the power button.
      await m.pause();
      expect((await m.stop(60_000)).how).toBe("powered-off");
    } finally {
      local.close();
      await outside.close();
    }
  });

  it("kills a guest that ignores the power button once the timeout passes", async () => {
    const m = manager("drv2");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    // Stopped before the guest has loaded its ACPI button driver: the press is lost.
    await m.start(
      startOptions(publicKey, { memoryMiB: 128, boot: { ...boot, cmdline: `${boot.cmdline} init=/bin/sh` }, hostname: "drv-two", instanceId: "drv2" }),
    );
    await m.stop(500);
    expect(await m.running()).toBe(false);
    expect(await qemuProcessesFor("drv2")).toBe(0);
    await m.delete();
  });

  it("resumes a VM suspended by a qemu without the devices and features added since (display, balloon, free page reporting)", async () => {
    const m = manager("drv3");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    const options = startOptions(publicKey, { hostname: "drv-three", instanceId: "drv3" });
    const first = await m.start(options);
    const argv = (await readFile(`/proc/${first.pid}/cmdline`, "latin1")).split("\0").slice(0, -1);
    await m.kill();
    const uptime = async (port: number) => Number((await sshWhenReady(m, port, ["cat", "/proc/uptime"])).stdout.split(" ")[0]);
    const readyLines = async () => (await m.serialTail(1_000_000)).split("hangar-guest: ssh ready").length;
    /** Boots this command line as an older Hangar ran it, saves the guest as a suspend does, and resumes it as Hangar runs qemu now. */
    const suspendUnderOlder = async (older: string[]) => {
      await execa(argv[0] ?? "", older);
      const [ssh] = (await m.forwards()).filter((f) => f.guestPort === 22);
      const savedUptime = await uptime(ssh?.hostPort ?? 0);
      const readyBefore = await readyLines();
      await withQmp(m.files.qmpSocket, async (qmp) => {
        await qmp.human(`savevm ${SUSPEND_TAG}`, 60_000);
        await qmp.execute("quit").catch(() => undefined);
      });
      await expect.poll(() => m.running()).toBe(false);
      const resumed = await m.start({ ...options, resume: true, machine: first.machine });
      // The guest carried on from where it was saved rather than booting again.
      expect(await uptime(resumed.sshPort)).toBeGreaterThanOrEqual(savedUptime);
      expect(await readyLines()).toBe(readyBefore);
      await m.kill();
    };
    // Before the display and the balloon: without the VGA card, its VNC socket and the balloon.
    const withoutDevices: string[] = [];
    for (let i = 1; i < argv.length; i++) {
      const arg = argv[i] ?? "";
      const next = argv[i + 1] ?? "";
      if ((arg === "-device" && /^(VGA|virtio-balloon-pci),/.test(next)) || arg === "-vnc") i++;
      else withoutDevices.push(arg);
    }
    expect(withoutDevices.length).toBe(argv.length - 1 - 6);
    await suspendUnderOlder(withoutDevices);
    // Before free page reporting: the balloon without it.
    const withoutReporting = argv.slice(1).map((arg) => arg.replace(/^(virtio-balloon-pci,.*),free-page-reporting=on$/, "$1"));
    expect(withoutReporting.filter((arg, i) => arg !== argv[i + 1])).toEqual(["virtio-balloon-pci,id=balloon0,addr=0x1d"]);
    await suspendUnderOlder(withoutReporting);
    await m.delete();
  });

  it("keeps a pool member's memory in a file: a suspend saves the devices alone, a resume carries on from it, later saves hold the memory, a stop removes it", async () => {
    const m = manager("drv5");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    const options = startOptions(publicKey, { hostname: "drv-five", instanceId: "drv5", memoryFile: true });
    const first = await m.start(options);
    await sshWhenReady(m, first.sshPort, ["sh", "-c", "echo kept > /tmp/marker"]);
    expect(statSync(m.files.memory).size).toBe(256 * 1024 * 1024);

    await m.suspend();
    expect(await m.running()).toBe(false);
    const suspendState = async () => {
      const info = JSON.parse((await execa("qemu-img", ["info", "-U", "--output=json", "--", m.files.disk])).stdout) as {
        snapshots?: { name: string; "vm-state-size": number }[];
      };
      return info.snapshots?.find((s) => s.name === SUSPEND_TAG);
    };
    // The saved state is the devices' (about 1 MB); the memory stayed in its file.
    expect((await suspendState())?.["vm-state-size"]).toBeLessThan(4 * 1024 * 1024);
    expect(statSync(m.files.memory).isFile()).toBe(true);

    const resumed = await m.start({ ...options, resume: true, machine: first.machine });
    // The guest carried on: what it kept in memory (/tmp is a tmpfs) is still there.
    expect((await sshWhenReady(m, resumed.sshPort, ["cat", "/tmp/marker"])).stdout.trim()).toBe("kept");
    expect(await suspendState()).toBeUndefined();

    // A live snapshot of it holds the memory (x-ignore-shared is off again), and reverting brings the marker back.
    await m.createSnapshot("live1");
    const [live] = await m.listSnapshots();
    expect(live?.vmStateBytes ?? 0).toBeGreaterThan(10 * 1024 * 1024);
    await sshWhenReady(m, resumed.sshPort, ["rm", "/tmp/marker"]);
    await m.revertSnapshot("live1");
    expect((await sshWhenReady(m, resumed.sshPort, ["cat", "/tmp/marker"])).stdout.trim()).toBe("kept");

    // The resume mapped the file privately (its writes are not the file's): the next suspend saves the memory too.
    await m.suspend();
    expect((await suspendState())?.["vm-state-size"]).toBeGreaterThan(10 * 1024 * 1024);
    const again = await m.start({ ...options, resume: true, machine: first.machine });
    expect((await sshWhenReady(m, again.sshPort, ["cat", "/tmp/marker"])).stdout.trim()).toBe("kept");

    await m.stop(0);
    expect(statSync(m.files.memory, { throwIfNoEntry: false })).toBeUndefined();
    await m.deleteSnapshot("live1");
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
    // A sentence: qemu's own words name its options and host paths, so they go to the server log.
    await expect(m.start(startOptions(publicKey, { memoryMiB: 128, boot: { kernel: path.join(stateDir, "no-such-kernel") } }))).rejects.toThrow(
      /^qemu failed to start \(exit code \d+\); the server log has its output$/,
    );
    expect(await m.running()).toBe(false);
    expect(await qemuProcessesFor("drv3")).toBe(0);
    await m.delete();
  });

  it("refuses a fixed host port another program holds, naming it, before qemu runs", async () => {
    const m = manager("drv-port");
    await m.create(path.join(guestDir, "disk.qcow2"));
    const { publicKey } = await m.identity();
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const start = m.start(startOptions(publicKey, { ports: [{ hostPort: port, guestPort: 80 }] }));
      await expect(start).rejects.toThrow(HostPortTakenError);
      await expect(start).rejects.toThrow(
        `Host port ${port} is taken on this host; free it, or forward guest port 80 on another host port (0 for any free one).`,
      );
    } finally {
      holder.close();
    }
    expect(await qemuProcessesFor("drv-port")).toBe(0);
    await m.delete();
  });
});

describe("QemuManager disks (qemu-img, no boot)", () => {
  const GIB = 1024 ** 3;

  it("creates a disk of the asked size, never smaller than the image, grows it, and refuses to shrink", async () => {
    const plain = manager("dsk0");
    await plain.create(path.join(guestDir, "disk.qcow2"));
    const base = await plain.diskInfo();
    const small = manager("dsk1");
    await small.create(path.join(guestDir, "disk.qcow2"), "qcow2", 1024 * 1024);
    expect((await small.diskInfo()).virtualBytes).toBe(base.virtualBytes);

    const big = manager("dsk2");
    await big.create(path.join(guestDir, "disk.qcow2"), "qcow2", 2 * GIB);
    expect((await big.diskInfo()).virtualBytes).toBe(2 * GIB);
    await big.resizeDisk(3 * GIB);
    expect((await big.diskInfo()).virtualBytes).toBe(3 * GIB);
    await expect(big.resizeDisk(GIB)).rejects.toBeInstanceOf(DiskShrinkError);
    await big.createSnapshot("before");
    await expect(big.resizeDisk(4 * GIB)).rejects.toBeInstanceOf(DiskHasSnapshotsError);
  });

  it("clones without the source's snapshots", async () => {
    const source = manager("dsk3");
    await source.create(path.join(guestDir, "disk.qcow2"));
    await source.createSnapshot("kept-on-the-source");
    const clone = manager("dsk4");
    await clone.cloneFrom("dsk3");
    expect((await source.listSnapshots()).map((s) => s.name)).toEqual(["kept-on-the-source"]);
    expect(await clone.listSnapshots()).toEqual([]);
  });
});
