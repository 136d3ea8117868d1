// Hangar's own account and the ready condition, on the real tiny guest through the API.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;
let api: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;

beforeAll(async () => {
  t = await createTestHangar();
  api = await callerFor(t.hangar);
  imageId = (await tinyImage(t.hangar)).id;
});
afterAll(async () => {
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

const sh = (id: string, script: string, extra: { asRoot?: boolean; timeoutSec?: number } = {}) => api.vm.exec({ id, command: ["sh", "-c", script], ...extra });

describe("Hangar's own account in the guest", () => {
  it("runs exec right after start once the guest is ready, as hangar; asRoot through sudo; sync as either", async () => {
    const vm = await api.vm.create({ name: "own", imageId, cpus: 1, memoryMiB: 256, userData: "#cloud-config\nruncmd:\n  - echo ran > /run/runcmd-ran\n" });
    await api.vm.start({ id: vm.id });
    // No wait for SSH first: exec waits for the ready condition within its own timeout, so
    // runcmd has run by the time the command does.
    const first = await sh(vm.id, "whoami; id -u; cat /run/runcmd-ran", { timeoutSec: 120 });
    expect(first).toMatchObject({ stdout: "hangar\n1000\nran\n", exitCode: 0 });
    expect(await api.vm.get({ id: vm.id })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done", readyAt: expect.any(Date) });

    expect((await api.vm.exec({ id: vm.id, command: ["whoami"], asRoot: true })).stdout).toBe("root\n");
    expect((await api.vm.exec({ id: vm.id, command: ["whoami"] })).stdout).toBe("hangar\n");
    // Without asRoot the command has hangar's rights, not root's.
    expect((await sh(vm.id, "touch /etc/hangar-was-here")).exitCode).not.toBe(0);

    const dir = path.join(t.env.syncRoot, "site");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "index.html"), "hello\n");
    await api.vm.sync({ id: vm.id, from: "site/", to: "/home/hangar/site" });
    await api.vm.sync({ id: vm.id, from: "site/", to: "/etc/site", asRoot: true });
    await api.vm.sync({ id: vm.id, from: "site/", to: "/etc/given", chown: "hangar:hangar" });
    const owners = await sh(vm.id, "stat -c '%U %n' /home/hangar/site/index.html /etc/site/index.html /etc/given/index.html; cat /etc/site/index.html");
    expect(owners.stdout).toBe("hangar /home/hangar/site/index.html\nroot /etc/site/index.html\nhangar /etc/given/index.html\nhello\n");
    await expect(api.vm.sync({ id: vm.id, from: "site/", to: "/etc/refused" })).rejects.toMatchObject({
      // rsync's own words, or (when the guest's rsync ended before they arrived) what its exit code means.
      message: expect.stringMatching(/Syncing into VM "own" failed: rsync failed: .*(Permission denied|may not write)/),
    });

    // A guest without rsync (many stock cloud images) gets the same copies through tar.
    expect((await sh(vm.id, "mv /usr/bin/rsync /usr/bin/rsync.off", { asRoot: true })).exitCode).toBe(0);
    writeFileSync(path.join(dir, "skip.tmp"), "left out\n");
    await api.vm.sync({ id: vm.id, from: "site/", to: "/home/hangar/tar-contents", excludes: ["*.tmp"] });
    await api.vm.sync({ id: vm.id, from: "site", to: "/home/hangar" });
    // A directory to a path not there yet: made, with the directory inside (as rsync), not its files run together into one.
    await api.vm.sync({ id: vm.id, from: "site", to: "/home/hangar/new-dir" });
    await api.vm.sync({ id: vm.id, from: "site/index.html", to: "/home/hangar/renamed.html" });
    await api.vm.sync({ id: vm.id, from: "site/", to: "/etc/tar-given", chown: "hangar:hangar" });
    const copied = await sh(
      vm.id,
      "ls /home/hangar/tar-contents; cat /home/hangar/site/index.html /home/hangar/renamed.html /home/hangar/new-dir/site/index.html; stat -c '%U' /etc/tar-given/index.html",
    );
    expect(copied).toMatchObject({ exitCode: 0, stdout: "index.html\nhello\nhello\nhello\nhangar\n" });
  });

  it("ends a command that runs past its timeout with TIMEOUT and a sentence", async () => {
    const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { name: "own" } });
    const error = await sh(vm.id, "sleep 30", { timeoutSec: 2 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TIMEOUT", message: 'The command in VM "own" did not finish within 2 s and was ended; give it a larger timeoutSec.' });
    expect((await api.vm.exec({ id: vm.id, command: ["true"] })).exitCode).toBe(0);
  });

  it("clears ready on stop, and vm.wait waits for ready after the next start", async () => {
    const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { name: "own" } });
    expect(await api.vm.stop({ id: vm.id, timeoutSec: 0 })).toMatchObject({ readyState: null, readyAt: null, readyDetail: null });
    expect(await api.vm.start({ id: vm.id })).toMatchObject({ state: "Running", readyState: "booting" });
    const ready = await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 120 });
    expect(ready).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
    expect((await sh(vm.id, "cat /run/runcmd-ran")).stdout).toBe("ran\n");
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    expect(await api.vm.wait({ id: vm.id, for: "Stopped", timeoutSec: 5 })).toMatchObject({ state: "Stopped" });
  });

  it("creates the account for user-data that is a script, runs the script, and reports its failure as cloud-init's", async () => {
    const vm = await api.vm.create({ name: "scripted", imageId, cpus: 1, memoryMiB: 256, userData: "#!/bin/sh\necho from-script > /run/script-ran\nexit 3\n" });
    await api.vm.start({ id: vm.id });
    const settled = await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 120 });
    expect(settled).toMatchObject({ readyState: "error", readyDetail: expect.stringMatching(/^cloud-init failed in module scripts_user/) });
    expect((await sh(vm.id, "whoami; cat /run/script-ran")).stdout).toBe("hangar\nfrom-script\n");
    const events = (await api.vm.events({ vmId: vm.id, limit: 10 })).events;
    expect(events.find((event) => event.action === "ready")).toMatchObject({
      action: "ready",
      ok: false,
      message: expect.stringMatching(/^Not ready: cloud-init failed in module scripts_user/),
    });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });
});
