// Network "bridge" with the real qemu bridge helper and the tiny guest. A bridge the helper
// does not allow is refused: qemu does not start and nothing is left running. Where this
// machine lets the test make a host bridge (root, `ip link add` works), the guest's second
// NIC joins it and reaches the host's address on it; the test allows that bridge in
// /etc/qemu/bridge.conf for its duration and puts the file back as it was.
import { randomInt } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, inject, it } from "vitest";
import { sshWhenReady, tinyGuestBoot } from "../../testing/guest.ts";
import { chooseAccel } from "./accel.ts";
import { QemuManager } from "./manager.ts";

const guestDir = inject("guestDir");
const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-bridge-"));
const boot = tinyGuestBoot(guestDir);
const accel = () => chooseAccel(stateDir, boot.kernel).then((d) => d.accel);
const n = randomInt(1, 250);
const bridge = `hgtbr${n}`;
const hostAddress = `10.214.${n}.1`;
const guestAddress = `10.214.${n}.2`;
const BRIDGE_CONF = "/etc/qemu/bridge.conf";
const cleanups: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
});

async function vm(id: string) {
  const m = new QemuManager(id, { stateDir, imagesDir: guestDir, accel });
  cleanups.push(() => m.kill());
  await m.create(path.join(guestDir, "disk.qcow2"));
  const { publicKey } = await m.identity();
  return {
    m,
    options: {
      userData: "",
      cpus: 1,
      memoryMiB: 192,
      sshAuthorizedKey: publicKey,
      monitor: false,
      boot,
      ports: [],
      sshHostPort: 0,
      hostname: id,
      instanceId: id,
    },
  };
}

/** Makes the host bridge and allows it for qemu's helper; false where this machine does not let us. */
async function makeBridge(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  if ((await execa("ip", ["link", "add", bridge, "type", "bridge"], { reject: false })).exitCode !== 0) return false;
  cleanups.push(() => execa("ip", ["link", "del", bridge]));
  await execa("ip", ["addr", "add", `${hostAddress}/24`, "dev", bridge]);
  await execa("ip", ["link", "set", bridge, "up"]);
  const before = await readFile(BRIDGE_CONF, "utf8").catch(() => undefined);
  const madeDir = await mkdir(path.dirname(BRIDGE_CONF), { recursive: true });
  await writeFile(BRIDGE_CONF, `${before ?? ""}allow ${bridge}\n`, { mode: 0o644 });
  cleanups.push(async () => {
    if (before === undefined) await rm(BRIDGE_CONF, { force: true });
    else await writeFile(BRIDGE_CONF, before);
    if (madeDir) await rmdir(path.dirname(BRIDGE_CONF)).catch(() => undefined);
  });
  return true;
}

describe("network bridge", () => {
  it("refuses a bridge the helper does not allow, and joins one it allows where this machine can make one", async () => {
    const refused = await vm("br1");
    await expect(refused.m.start({ ...refused.options, network: { mode: "bridge", bridge: `hgtno${n}` } })).rejects.toThrow(/qemu failed to start/);
    expect(await refused.m.running()).toBe(false);

    // Without root, or where bridges cannot be made, the refusal above is what this host can show.
    if (!(await makeBridge())) return;
    const { m, options } = await vm("br2");
    const { sshPort } = await m.start({ ...options, network: { mode: "bridge", bridge } });
    await sshWhenReady(m, sshPort, ["true"]);
    // The tap the helper made is a port of the bridge.
    const { stdout: ports } = await execa("ip", ["-o", "link", "show", "master", bridge]);
    expect(ports).toMatch(/tap/);
    const { privateKeyFile } = await m.identity();
    // No DHCP on this bridge: the address is set by hand, on the NIC that is not SSH's.
    const script = `ip addr add ${guestAddress}/24 dev eth1 && ip link set eth1 up && ping -c 3 -W 5 ${hostAddress}`;
    const result = await m.shell(["sh", "-c", script], sshPort, privateKeyFile, { asRoot: true, timeoutMs: 60_000 });
    expect(result.stdout, result.stderr).toMatch(/3 packets transmitted, [1-3] packets received/);
    await m.stop(30_000);
  });
});
