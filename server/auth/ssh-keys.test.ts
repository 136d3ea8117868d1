// Personal SSH keys: the format check says what is wrong, each user sees and removes only
// their own, a VM a user creates gets them through its cidata, and a pooled VM a user
// acquires gets them appended to the login user's authorized_keys. Fake driver.
import { execa } from "execa";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { parsePublicKey } from "./ssh-keys.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-keys-"));
let key = "";
let fingerprint = "";
beforeAll(async () => {
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", path.join(work, "id")]);
  key = readFileSync(path.join(work, "id.pub"), "utf8").trim();
  fingerprint = (await execa("ssh-keygen", ["-l", "-f", path.join(work, "id.pub")])).stdout.split(" ")[1] ?? "";
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("parsePublicKey", () => {
  it("takes an ssh-keygen line and computes ssh-keygen's fingerprint", () => {
    const parsed = parsePublicKey(`  ${key}\n`);
    expect(parsed).toEqual({ publicKey: key.split(" ").slice(0, 2).join(" "), comment: "me@laptop", fingerprint });
  });

  it.each([
    ["", /empty/],
    ["ssh-dss AAAAB3NzaC1kc3MAAACBAP", /not an SSH key type/],
    ["-----BEGIN OPENSSH PRIVATE KEY-----", /private key/],
    ["-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", /private key/],
    ["ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", /damaged or incomplete/],
    ["ssh-ed25519 not*base64", /damaged or incomplete/],
    ["ssh-ed25519 AAAA\nssh-rsa AAAA", /more than one line/],
  ])("refuses %j with a sentence", (text, message) => {
    expect(() => parsePublicKey(text)).toThrow(message);
  });
});

describe("account keys", () => {
  let t: TestHangar;
  let fake: FakeDriver;
  beforeEach(async () => {
    fake = new FakeDriver();
    t = await createTestHangar({ driverFor: fake.managerFor, pool: { backoffMs: { first: 10, max: 40 }, readyTimeoutMs: 1000 } });
  });
  afterEach(async () => {
    await t.hangar.pools.close();
    await t.cleanup();
  });

  it("adds, lists and removes a user's own keys; others see none and cannot remove them", async () => {
    const me = await callerFor(t.hangar, "operator", "me@test.hangar");
    const other = await callerFor(t.hangar, "operator", "other@test.hangar");
    const added = await me.account.addSshKey({ publicKey: key });
    expect(added).toMatchObject({ name: "me@laptop", fingerprint });
    await expect(me.account.addSshKey({ publicKey: key, name: "again" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/already added/),
    });
    await expect(me.account.addSshKey({ publicKey: "hello" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/OpenSSH public key line/),
    });
    expect((await me.account.sshKeys()).map((k) => k.id)).toEqual([added.id]);
    expect(await other.account.sshKeys()).toEqual([]);
    await expect(other.account.removeSshKey({ id: added.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await me.account.removeSshKey({ id: added.id });
    expect(await me.account.sshKeys()).toEqual([]);
  });

  it("gives a VM its owner's keys at start, and a pooled VM its acquirer's keys", async () => {
    const me = await callerFor(t.hangar, "operator", "me@test.hangar");
    await me.account.addSshKey({ publicKey: key, name: "laptop" });
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await me.vm.create({ name: "mine", imageId: image.id, cpus: 1, memoryMiB: 128 });
    await me.vm.start({ id: vm.id });
    expect(fake.vms.get(vm.id)?.lastStart?.userAuthorizedKeys).toEqual([`${key.split(" ").slice(0, 2).join(" ")} laptop`]);

    const pool = await t.hangar.pools.createPool({ name: "warm", imageId: image.id, cpus: 1, memoryMiB: 128, size: 1, staging: "Running" }, "tester");
    await t.hangar.pools.kick(pool.id);
    const acquired = await me.pool.acquire({ poolId: pool.id, timeoutSec: 10 });
    const installs = fake.vms.get(acquired.vmId)?.shells.filter((s) => s.command.join(" ").includes("authorized_keys")) ?? [];
    expect(installs.map((s) => s.options.input)).toEqual([`${key.split(" ").slice(0, 2).join(" ")} laptop\n`]);
    // No key of the caller's own for this acquire: the VM's key still comes back.
    expect(acquired.privateKey).toBeTruthy();
  });

  it("adds the caller's keys to a running VM made before them, for those who may control it", async () => {
    const me = await callerFor(t.hangar, "operator", "me@test.hangar");
    const other = await callerFor(t.hangar, "operator", "other@test.hangar");
    const viewer = await callerFor(t.hangar, "viewer", "viewer@test.hangar");
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await me.vm.create({ name: "older", imageId: image.id, cpus: 1, memoryMiB: 128 });
    await expect(me.vm.addMyKeys({ id: vm.id })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/^Your account has no SSH keys/),
    });
    await me.account.addSshKey({ publicKey: key, name: "laptop" });
    await expect(me.vm.addMyKeys({ id: vm.id })).rejects.toMatchObject({ code: "PRECONDITION_FAILED", message: 'VM "older" is Stopped; start it first.' });
    await me.vm.start({ id: vm.id });
    await other.account.addSshKey({ publicKey: key, name: "stolen" });
    await expect(other.vm.addMyKeys({ id: vm.id })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(viewer.vm.addMyKeys({ id: vm.id })).rejects.toMatchObject({ code: "FORBIDDEN" });

    expect(await me.vm.addMyKeys({ id: vm.id })).toEqual({ added: 1, keys: 1, user: "hangar" });
    const installs = fake.vms.get(vm.id)?.shells.filter((s) => s.command.join(" ").includes("authorized_keys")) ?? [];
    expect(installs.map((s) => [s.options.user, s.options.input])).toEqual([["hangar", `${key.split(" ").slice(0, 2).join(" ")} laptop\n`]]);
    const event = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "ssh-keys" } });
    expect(event).toMatchObject({ actor: "me@test.hangar", ok: true, message: "Added 1 of me@test.hangar's 1 SSH key to the login user hangar" });
  });
});
