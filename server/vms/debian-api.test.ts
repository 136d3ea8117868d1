// A stock-shaped distribution guest through the API, as an operator would use it: the Debian 12
// cloud disk (built from Debian's packages, cached) imported as a UEFI image, a VM created with
// user-data (write_files, runcmd, a user of its own), started, waited for until cloud-init is
// done, then exec as Hangar's account and as root, the Shell terminal, root's SSH login refused,
// the nat network's route, DNS and a way out, UEFI, a disk grown past the image's, suspend and
// resume (the saved state beside the UEFI variable store), clones, and a stop. One boot, and one
// resume, for every check: a Debian boot under TCG takes minutes.
import { copyFile, link, mkdir } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TRPCError } from "@trpc/server";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createTerminalBridge, type TerminalBridge } from "../terminal/bridge.ts";
import { QemuManager, SUSPEND_TAG } from "../driver/qemu/manager.ts";
import { decodeControl } from "../terminal/protocol.ts";
import { openSshSessions } from "../terminal/ssh-session.ts";
import { DEBIAN_BUILD_TIMEOUT_MS, buildDebianGuest, debianGuestDisk } from "../testing/debian.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { startOutsideHost, type OutsideHost } from "../testing/outside-host.ts";

let t: TestHangar;
let server: http.Server;
let bridge: TerminalBridge;
let origin: string;
let outside: OutsideHost | undefined;

beforeAll(async () => {
  await buildDebianGuest();
  // Without KVM, on a loaded machine, Debian's first boot can take longer than the default.
  t = await createTestHangar({ settings: { HANGAR_READY_TIMEOUT_SEC: 45 * 60 } });
  // The import takes a file under the images directory; a link reads the cached build
  // without copying 400 MB first (the import itself only ever reads it).
  await mkdir(t.env.imagesDir, { recursive: true });
  const given = path.join(t.env.imagesDir, "debian-12.qcow2");
  await link(debianGuestDisk, given).catch(() => copyFile(debianGuestDisk, given));
  t.hangar.terminals.close();
  server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  bridge = createTerminalBridge({ hangar: t.hangar, hub: t.hangar.consoles, tickets: t.hangar.tickets, allowedOrigins: [origin], heartbeatMs: 500 });
  server.on("upgrade", (req, socket, head) => bridge.handleUpgrade(req, socket, head));
  // A host outside this one to reach through nat (a network namespace: needs root).
  if (process.getuid?.() === 0) outside = await startOutsideHost();
}, DEBIAN_BUILD_TIMEOUT_MS);

afterAll(async () => {
  bridge.close();
  server.close();
  await outside?.close();
  t.hangar.consoles.closeAll();
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

/** Shell over the terminal WebSocket: types `lines`, returns what it showed and its exit code. */
async function shell(api: Awaited<ReturnType<typeof callerFor>>, vmId: string, lines: string[]): Promise<{ text: string; exit: number }> {
  const { path: wsPath } = await api.terminal.ticket({ vmId, kind: "shell" });
  const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin } });
  let text = "";
  let exit: number | undefined;
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary) text += data.toString("utf8");
    else {
      const control = decodeControl(data.toString("utf8"));
      if (control?.type === "exit") exit = control.code;
    }
  });
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  for (const line of lines) ws.send(Buffer.from(`${line}\n`), { binary: true });
  await Promise.race([closed, sleep(60_000)]);
  ws.close();
  return { text, exit: exit ?? -1 };
}

describe("the Debian 12 cloud guest through the API", () => {
  it(
    "imports as a UEFI image, applies the VM's user-data with Hangar's account, is ready after cloud-init, runs exec, Shell and nat, grows its disk, suspends, resumes and clones",
    async () => {
      const api = await callerFor(t.hangar);
      const image = await api.image.import({ name: "debian-12", path: "debian-12.qcow2", firmware: "uefi" });
      expect(image).toMatchObject({ status: "ready", format: "qcow2", firmware: "uefi", loginUser: "hangar" });

      const userData = [
        "#cloud-config",
        "users:",
        "  - default",
        "  - name: alice",
        "    shell: /bin/bash",
        "    lock_passwd: true",
        "write_files:",
        "  - path: /etc/hangar-test/greeting",
        "    content: hello from write_files",
        "runcmd:",
        "  - [sh, -c, 'echo ran > /var/tmp/runcmd-ok']",
        // One host key, as a user may ask: an RSA key alone takes cloud-init 20 to 40 s to make under TCG.
        "ssh_genkeytypes: [ed25519]",
        "",
      ].join("\n");
      const vm = await api.vm.create({ name: "deb-api", imageId: image.id, cpus: 2, memoryMiB: 1024, userData, network: "nat", diskGiB: 3 });
      expect(vm).toMatchObject({ state: "Stopped", network: "nat" });
      const running = await api.vm.start({ id: vm.id });
      expect(running.state).toBe("Running");

      const startedAt = Date.now();
      let ready: Awaited<ReturnType<typeof api.vm.wait>> | undefined;
      // Under TCG on a busy machine the first boot can take longer than one wait allows.
      for (let attempt = 1; !ready; attempt++) {
        ready = await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 600 }).catch((error: unknown) => {
          if (attempt < 4 && error instanceof TRPCError && error.code === "TIMEOUT") return undefined;
          throw error;
        });
      }
      console.log(`debian guest through the API: ready after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
      if (ready.readyState !== "ready") console.log(`--- serial ---\n${(await api.vm.get({ id: vm.id })).serialTail}`);
      expect(ready).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
      expect(await api.vm.get({ id: vm.id })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });

      // Ready means cloud-init finished: its own status says done, and runcmd has run.
      const status = await api.vm.exec({ id: vm.id, command: ["cloud-init", "status", "--long"] });
      expect(status.stdout).toMatch(/^status: done$/m);
      const facts = await api.vm.exec({
        id: vm.id,
        command: [
          "sh",
          "-c",
          [
            "id -un",
            "hostname",
            "cat /var/tmp/runcmd-ok",
            "cat /etc/hangar-test/greeting; echo",
            "getent passwd alice | cut -d: -f1,7",
            "getent passwd debian | cut -d: -f1",
            "test -d /sys/firmware/efi && echo efi",
            "ip route show default",
            "grep -m1 ^nameserver /etc/resolv.conf",
            "findmnt -no SIZE --bytes /",
          ].join("; "),
        ],
      });
      expect(facts.exitCode).toBe(0);
      expect(facts.stdout.trim().split("\n")).toEqual([
        "hangar",
        "deb-api",
        "ran",
        "hello from write_files",
        "alice:/bin/bash",
        "debian",
        "efi",
        expect.stringMatching(/^default via 10\.0\.2\.2 /),
        "nameserver 10.0.2.3",
        // A 3 GiB disk from the image's 2 GiB: cloud-init's growpart and resizefs used it.
        expect.stringMatching(/^\d+$/),
      ]);
      expect(Number(facts.stdout.trim().split("\n").at(-1))).toBeGreaterThan(2.5 * 1024 ** 3);

      // Its qemu-guest-agent reports the NIC's address, as for a bridged VM's LAN address.
      const { interfaces } = await api.vm.addresses({ id: vm.id });
      expect(interfaces?.flatMap((nic) => nic.addresses.map((ip) => ip.address))).toContain("10.0.2.15");

      // As root through sudo -n; root's own SSH login is refused (Debian's disable_root).
      const asRoot = await api.vm.exec({ id: vm.id, command: ["id", "-un"], asRoot: true });
      // Its hostname is in /etc/hosts (Hangar's vendor-data): sudo does not ask DNS for it.
      expect(asRoot).toMatchObject({ stdout: "root\n", stderr: "", exitCode: 0 });
      expect(await api.vm.exec({ id: vm.id, command: ["getent", "hosts", "deb-api"] })).toMatchObject({ exitCode: 0 });
      const driver = t.hangar.driverFor(vm.id);
      const { privateKeyFile } = await driver.identity();
      const rootLogin = await driver.shell(["id", "-un"], running.sshPort ?? 0, privateKeyFile, { user: "root", timeoutMs: 30_000 });
      expect(rootLogin.exitCode).not.toBe(0);
      expect(rootLogin.stdout).toContain(`Please login as the user "debian" rather than the user "root".`);
      expect(rootLogin.stdout).not.toContain("root\n");

      // nat is a way out: a web server on another host (a network namespace) answers the guest.
      if (outside) {
        const request = `exec 3<>/dev/tcp/${outside.address}/${outside.port}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`;
        const reached = await api.vm.exec({ id: vm.id, command: ["bash", "-c", request], timeoutSec: 30 });
        expect(reached.stdout).toContain(outside.greeting);
      }

      // The Shell terminal logs in as Hangar's account too.
      const session = await shell(api, vm.id, ["id -un", "exit 3"]);
      // Lines typed ahead echo before the prompt, so the answer follows a "$ ".
      expect(session.text).toMatch(/^(\$ )?hangar\r?$/m);
      expect(session.exit).toBe(3);
      await expect.poll(openSshSessions).toBe(0);

      // Suspend saves the VM's state into its disk (qemu snapshots the qcow2 UEFI variable
      // store beside it), and resume carries on where it was: the guest did not reboot (its
      // tmpfs survives).
      const qemu = t.hangar.driverFor(vm.id);
      if (!(qemu instanceof QemuManager)) throw new Error("the test Hangar drives qemu");
      const snapshotTags = async (file: string) => (await execa("qemu-img", ["snapshot", "-l", "-U", "--", file])).stdout;
      await api.vm.exec({ id: vm.id, command: ["sh", "-c", "echo before-suspend > /dev/shm/hangar-marker"] });
      expect(await api.vm.suspend({ id: vm.id })).toMatchObject({ state: "Suspended" });
      expect(await snapshotTags(qemu.files.disk)).toContain(SUSPEND_TAG);
      // A copy of the suspended UEFI VM (as a pool makes) takes the variable store along,
      // without the saved state.
      const copy = t.hangar.driverFor("debian-copy");
      if (!(copy instanceof QemuManager)) throw new Error("the test Hangar drives qemu");
      await copy.cloneFrom(vm.id);
      for (const file of [copy.files.disk, copy.files.uefiVars]) expect(await snapshotTags(file)).not.toContain(SUSPEND_TAG);
      await copy.delete();
      expect(await api.vm.start({ id: vm.id })).toMatchObject({ state: "Running" });
      const marker = await api.vm.exec({ id: vm.id, command: ["cat", "/dev/shm/hangar-marker"], timeoutSec: 300 });
      expect(marker).toMatchObject({ stdout: "before-suspend\n", exitCode: 0 });
      // Resumed, no saved state is left behind, in the disk or the variable store.
      for (const file of [qemu.files.disk, qemu.files.uefiVars]) expect(await snapshotTags(file)).not.toContain(SUSPEND_TAG);

      const stopped = await api.vm.stop({ id: vm.id, timeoutSec: 120 });
      expect(stopped).toMatchObject({ state: "Stopped", readyState: null });
      expect(stopped.lastStop).toMatchObject({ ok: true, message: expect.stringMatching(/^Powered off after /) });
      expect(await driver.running()).toBe(false);

      // A clone of the stopped VM is a VM of its own, with the grown disk and its own UEFI store.
      const clone = await api.vm.clone({ id: vm.id, name: "deb-clone" });
      expect(clone).toMatchObject({ state: "Stopped", diskGiB: 3, network: "nat" });
      const cloned = t.hangar.driverFor(clone.id);
      if (!(cloned instanceof QemuManager)) throw new Error("the test Hangar drives qemu");
      expect((await cloned.diskInfo()).virtualBytes).toBe(3 * 1024 ** 3);
      expect(await snapshotTags(cloned.files.uefiVars)).not.toContain(SUSPEND_TAG);
      await api.vm.delete({ id: clone.id });
      await api.vm.delete({ id: vm.id });
      await api.image.delete({ id: image.id });
    },
    50 * 60_000,
  );
});
