// A real distribution guest through the real qemu driver: Debian 12 built from Debian's
// packages by scripts/build-debian-guest.sh (cached by its stamp in the guest directory),
// booted through OVMF by its own GRUB, configured by Debian's own cloud-init from Hangar's
// NoCloud seed. One boot: every check runs in the same VM.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEBIAN_BUILD_TIMEOUT_MS, buildDebianGuest, debianGuestDir as guestDir } from "../../testing/debian.ts";
import type { StartOptions } from "../manager.ts";
import { chooseAccel } from "./accel.ts";
import { QemuManager, SUSPEND_TAG, sshOptions } from "./manager.ts";

const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-debian-"));
const accel = () => chooseAccel(stateDir, undefined).then((d) => d.accel);
const m = new QemuManager("deb1", { stateDir, imagesDir: guestDir, accel });
const LOGIN = "hangar";

beforeAll(buildDebianGuest, DEBIAN_BUILD_TIMEOUT_MS);

afterAll(async () => {
  await m.kill();
  rmSync(stateDir, { recursive: true, force: true });
});

/** Runs `command` in the guest as `user` with the VM's key; never throws for the guest's exit code. */
async function ssh(user: string, sshPort: number, command: string, timeoutMs = 120_000) {
  const { privateKeyFile } = await m.identity();
  return execa("ssh", [...sshOptions(sshPort, privateKeyFile), "--", `${user}@127.0.0.1`, command], { reject: false, timeout: timeoutMs });
}

/** Waits until `user` can log in over SSH; the guest boots for a minute or more under TCG. */
async function loginWhenReady(sshPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const result = await ssh(LOGIN, sshPort, "true", 20_000);
    if (result.exitCode === 0) return;
    last = `${result.stderr}`.trim();
    await sleep(1000);
  }
  throw new Error(`no SSH login within ${timeoutMs} ms (${last})\n--- serial ---\n${await m.serialTail(6000)}`);
}

describe("the Debian 12 cloud guest", () => {
  it(
    "boots through UEFI, runs Debian's cloud-init to done, grows its disk, suspends, resumes and clones",
    async () => {
      const output = new PassThrough();
      let log = "";
      output.on("data", (chunk: Buffer) => (log += chunk.toString()));
      m.setOutput(output);
      await m.create(path.join(guestDir, "disk.qcow2"));
      // A bigger disk than the image's 2 GiB: cloud-init's growpart and resizefs must use it.
      await execa("qemu-img", ["resize", "-q", "--", m.files.disk, "3G"]);
      const { publicKey } = await m.identity();
      const userData = [
        "#cloud-config",
        "users:",
        "  - default",
        `  - name: ${LOGIN}`,
        "    sudo: ALL=(ALL) NOPASSWD:ALL",
        "    shell: /bin/bash",
        "    ssh_authorized_keys:",
        `      - ${JSON.stringify(publicKey)}`,
        "runcmd:",
        "  - echo ran > /var/tmp/runcmd-ok",
        "",
      ].join("\n");
      const options: StartOptions = {
        userData,
        cpus: 2,
        memoryMiB: 1024,
        sshAuthorizedKey: publicKey,
        monitor: false,
        firmware: "uefi",
        ports: [],
        sshHostPort: 0,
        network: { mode: "nat" },
        hostname: "deb-one",
        instanceId: "deb1",
      };
      const startedAt = Date.now();
      const { sshPort } = await m.start(options);
      await loginWhenReady(sshPort, 15 * 60_000);
      const sshAfter = Date.now() - startedAt;

      const status = await ssh(LOGIN, sshPort, "cloud-init status --wait --long");
      const readyAfter = Date.now() - startedAt;
      console.log(
        `debian guest (${await accel()}, 2 vCPUs): SSH login after ${(sshAfter / 1000).toFixed(1)} s, cloud-init done after ${(readyAfter / 1000).toFixed(1)} s`,
      );
      expect(status.stdout).toMatch(/^status: done$/m);
      expect(status.exitCode).toBe(0);

      const facts = await ssh(
        LOGIN,
        sshPort,
        [
          "hostname",
          "test -d /sys/firmware/efi && echo efi",
          "cat /var/tmp/runcmd-ok",
          "sudo -n id -un",
          "findmnt -no SIZE --bytes /",
          "ip route show default",
          "grep -m1 ^nameserver /etc/resolv.conf",
        ].join("; "),
      );
      const [hostname, efi, runcmd, sudoUser, rootBytes, route, dns] = facts.stdout.trim().split("\n");
      expect([hostname, efi, runcmd, sudoUser]).toEqual(["deb-one", "efi", "ran", "root"]);
      // nat: a way out through user networking's gateway, and its DNS.
      expect(route).toContain("default via 10.0.2.2");
      expect(dns).toBe("nameserver 10.0.2.3");
      expect(Number(rootBytes)).toBeGreaterThan(2.5 * 1024 ** 3);

      // Debian's cloud-init keeps root logins out (disable_root): the key is refused a shell.
      const asRoot = await ssh("root", sshPort, "id -un");
      expect(asRoot.stdout).toContain(`Please login as the user "debian" rather than the user "root".`);

      // Suspend writes the VM state into the disk, beside the qcow2 UEFI variable store, and
      // resume carries on: the guest did not reboot (its tmpfs survives).
      await ssh(LOGIN, sshPort, "echo before-suspend > /dev/shm/hangar-marker");
      await m.suspend();
      const snapshots = await execa("qemu-img", ["snapshot", "-l", "--", m.files.disk]);
      expect(snapshots.stdout).toContain(SUSPEND_TAG);
      const resumed = await m.start({ ...options, resume: true });
      await loginWhenReady(resumed.sshPort, 5 * 60_000);
      const marker = await ssh(LOGIN, resumed.sshPort, "cat /dev/shm/hangar-marker");
      expect(marker.stdout.trim()).toBe("before-suspend");
      expect((await execa("qemu-img", ["snapshot", "-l", "-U", "--", m.files.uefiVars])).stdout).not.toContain(SUSPEND_TAG);

      // A clone of a suspended UEFI VM takes the variable store along, without the saved state.
      await m.suspend();
      const clone = new QemuManager("deb2", { stateDir, imagesDir: guestDir, accel });
      await clone.cloneFrom("deb1");
      for (const file of [clone.files.disk, clone.files.uefiVars]) {
        const { stdout } = await execa("qemu-img", ["snapshot", "-l", "--", file]);
        expect(stdout).not.toContain(SUSPEND_TAG);
      }
      await clone.delete();

      // Debian powers off on the ACPI button.
      const again = await m.start({ ...options, resume: true });
      await loginWhenReady(again.sshPort, 5 * 60_000);
      await m.stop(120_000);
      expect(await m.running()).toBe(false);
      expect(log).toContain("qemu powered off");
      await m.delete();
    },
    30 * 60_000,
  );
});
