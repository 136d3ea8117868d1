// Bad input gets BAD_REQUEST (or the domain's code) with a sentence, and changes nothing.
import { TRPCError } from "@trpc/server";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserDataError } from "../driver/user-data.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { withoutSecrets } from "./image.ts";

let t: TestHangar;
let fake: FakeDriver;
let api: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;

beforeAll(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  api = await callerFor(t.hangar);
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
});
afterAll(() => t.cleanup());

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a TRPCError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

const goodSpec = { cpus: 1, memoryMiB: 256 };

describe("vm.create input", () => {
  const good = { name: "ok-name", cpus: 1, memoryMiB: 256 };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["an upper-case name", { name: "Bad_Name" }, /DNS labels/],
    ["a name starting with a dash", { name: "-vm" }, /DNS labels/],
    ["a name with a comma", { name: "a,b" }, /DNS labels/],
    ["a 64-character name", { name: "a".repeat(64) }, /DNS labels/],
    ["zero CPUs", { cpus: 0 }, /at least 1 CPU/],
    ["too little memory", { memoryMiB: 16 }, /at least 64 MiB/],
    ["a privileged host port", { ports: [{ hostPort: 80, guestPort: 80 }] }, /^ports\.0\.hostPort must be 0 \(any free port\) or 1024 and above\.$/],
    ["a disk of 0 GiB", { diskGiB: 0 }, /^diskGiB must be at least 1\.$/],
    ["no CPUs and no memory given", { cpus: undefined, memoryMiB: undefined }, /^cpus is required \(number\)\. memoryMiB is required \(number\)\.$/],
    ["forwarding SSH again", { ports: [{ hostPort: 0, guestPort: 22 }] }, /always forwarded/],
    [
      "a guest port twice",
      {
        ports: [
          { hostPort: 0, guestPort: 80 },
          { hostPort: 0, guestPort: 80 },
        ],
      },
      /forwarded once/,
    ],
    [
      "a #cloud-config that is not YAML",
      { userData: "#cloud-config\n  foo: [bar\n" },
      /^userData: The user-data is #cloud-config but not valid YAML \(line \d+\)\. Fix it and try again\.$/,
    ],
    ["a #cloud-config whose users: is a number", { userData: "#cloud-config\nusers: 3\n" }, /must be a list of users/],
    [
      "a #cloud-config alias bomb",
      {
        // Each level is ten aliases of the one before: 10^7 x's once resolved.
        userData: [
          "#cloud-config",
          "a: &a [x,x,x,x,x,x,x,x,x,x]",
          ...[..."bcdefg"].map((name, i) => `${name}: &${name} [${Array(10).fill(`*${"abcdef"[i]}`).join(",")}]`),
          "users: [*g]",
        ].join("\n"),
      },
      /^userData: The user-data uses too many YAML aliases .* Fix it and try again\.$/,
    ],
  ];
  it.each(cases)("refuses %s with BAD_REQUEST and a sentence", async (_label, change, message) => {
    const result = await refusal(api.vm.create({ ...good, imageId, ...change } as Parameters<typeof api.vm.create>[0]));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(message);
    expect(await t.hangar.db.vm.count()).toBe(0);
    expect(fake.vms.size).toBe(0);
  });

  it("refuses a pool whose user-data cloud-init could not read", async () => {
    const result = await refusal(api.pool.create({ name: "p", imageId, ...goodSpec, size: 1, staging: "Stopped", userData: "#cloud-config\n- a list\n" }));
    expect(result).toEqual({ code: "BAD_REQUEST", message: expect.stringMatching(/must be a YAML mapping/) as unknown });
    expect(await t.hangar.db.pool.count()).toBe(0);
  });

  it("says why a VM whose stored user-data cloud-init could not read does not start, with BAD_REQUEST", async () => {
    const vm = await api.vm.create({ name: "old-user-data", imageId, ...goodSpec });
    await t.hangar.db.vm.update({ where: { id: vm.id }, data: { userData: "#cloud-config\n  foo: [bar\n" } });
    fake.failNext.set("start", new UserDataError("The user-data is #cloud-config but not valid YAML (line 3)."));
    const result = await refusal(api.vm.start({ id: vm.id }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/^Starting VM "old-user-data" failed: .*not valid YAML \(line 3\)\. A VM keeps the user-data it was created with/);
    expect((await api.vm.get({ id: vm.id })).state).toBe("Stopped");
    await api.vm.delete({ id: vm.id });
  });

  it("refuses an unknown image with NOT_FOUND", async () => {
    expect(await refusal(api.vm.create({ ...good, imageId: "nosuchimage" }))).toEqual({
      code: "NOT_FOUND",
      message: 'No image with id "nosuchimage"; pick one from the Images page.',
    });
  });

  it("refuses a duplicate name with CONFLICT", async () => {
    await api.vm.create({ ...good, name: "twin", imageId });
    expect(await refusal(api.vm.create({ ...good, name: "twin", imageId }))).toEqual({
      code: "CONFLICT",
      message: 'A VM named "twin" already exists; pick another name.',
    });
  });

  it("refuses actions on a missing VM with NOT_FOUND and an invalid transition with CONFLICT", async () => {
    expect((await refusal(api.vm.start({ id: "nosuchvm" }))).code).toBe("NOT_FOUND");
    const vm = await api.vm.create({ ...good, name: "runner", imageId });
    await api.vm.start({ id: vm.id });
    const again = await refusal(api.vm.start({ id: vm.id }));
    expect(again).toEqual({ code: "CONFLICT", message: 'Cannot start VM "runner" while it is Running. Allowed now: Stop, Suspend.' });
    expect((await refusal(api.vm.stop({ id: vm.id, timeoutSec: -1 }))).code).toBe("BAD_REQUEST");
  });
});

describe("user-data", () => {
  it("is shown to those who may control the VM, and to admins for pools; other readers get null", async () => {
    const secret = "#cloud-config\nchpasswd: { list: 'root:s3cret' }\n";
    const owner = await callerFor(t.hangar, "operator", "owner@test.hangar");
    const other = await callerFor(t.hangar, "operator", "other@test.hangar");
    const viewer = await callerFor(t.hangar, "viewer");
    const vm = await owner.vm.create({ ...goodSpec, name: "secretive", imageId, userData: secret });
    expect(vm.userData).toBe(secret);
    expect((await owner.vm.get({ id: vm.id })).userData).toBe(secret);
    expect((await api.vm.get({ id: vm.id })).userData).toBe(secret);
    expect((await other.vm.get({ id: vm.id })).userData).toBeNull();
    expect((await viewer.vm.get({ id: vm.id })).userData).toBeNull();
    const pool = await api.pool.create({ name: "secretive-pool", imageId, ...goodSpec, size: 0, staging: "Stopped", userData: secret });
    const seen = async (caller: typeof api) => (await caller.pool.list()).find((p) => p.id === pool.id)?.userData;
    expect([await seen(api), await seen(owner), await seen(viewer)]).toEqual([secret, null, null]);
    await api.pool.delete({ id: pool.id });
    await owner.vm.delete({ id: vm.id });
  });
});

describe("image.import input", () => {
  it("refuses a path outside the images directory", async () => {
    const result = await refusal(api.image.import({ name: "etc", path: "/etc/passwd" }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/must be a file under .*images/);
  });

  it("refuses ../ escapes, missing files, both path and url, and non-http URLs", async () => {
    mkdirSync(t.env.imagesDir, { recursive: true });
    writeFileSync(path.join(t.env.stateDir, "outside.qcow2"), "not an image");
    expect((await refusal(api.image.import({ name: "up", path: "../outside.qcow2" }))).message).toMatch(/must be a file under/);
    expect((await refusal(api.image.import({ name: "none", path: "missing.qcow2" }))).message).toBe(
      'There is no image "missing.qcow2" under the images directory; check the name.',
    );
    expect((await refusal(api.image.import({ name: "none", path: "sub/../etc/missing.qcow2" }))).message).toBe(
      "There is no image at that path under the images directory; check the name.",
    );
    expect((await refusal(api.image.import({ name: "both", path: "a", url: "https://example.invalid/a" }))).code).toBe("BAD_REQUEST");
    expect((await refusal(api.image.import({ name: "ftp", url: "ftp://example.invalid/a.qcow2" }))).message).toMatch(/http and https/);
    expect(await t.hangar.db.image.count({ where: { name: { in: ["up", "none", "both", "ftp"] } } })).toBe(0);
  });

  it("imports a raw file under the images directory as a qcow2 copy, hashing it, and checks a given sha256", async () => {
    const file = path.join(t.env.imagesDir, "blank.img");
    writeFileSync(file, Buffer.alloc(1024 * 1024));
    const wrong = await refusal(api.image.import({ name: "blank-bad", path: "blank.img", sha256: "0".repeat(64) }));
    expect(wrong.message).toMatch(/sha256 is [0-9a-f]{64}, not 0{64}/);
    const image = await api.image.import({ name: "blank", path: "blank.img" });
    expect(image).toMatchObject({ format: "qcow2", status: "ready", progress: 1024n * 1024n, firmware: "bios" });
    expect(image.sha256).toBe("30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58");
    expect(image.path).toBe(path.join(t.env.imagesDir, `${image.sha256}.qcow2`));
    await api.image.delete({ id: image.id });
    // The audit log says who imported and deleted it; the refused import is not there.
    const { events } = await api.audit.list({ stream: "audit", limit: 10 });
    const imageEntries = events
      .filter((event) => event.action.startsWith("image-"))
      .map(({ actor, action, target, message }) => ({ actor, action, target, message }));
    expect(imageEntries).toEqual([
      { actor: "admin@test.hangar", action: "image-delete", target: "blank", message: "Deleted image blank" },
      { actor: "admin@test.hangar", action: "image-import", target: "blank", message: "Imported image blank from file blank.img" },
    ]);
  });

  it("keeps a URL's credentials and query out of the audit log", () => {
    expect(withoutSecrets("https://ana:hunter2@images.example/debian/12.qcow2?X-Amz-Signature=abc#frag")).toBe("https://images.example/debian/12.qcow2");
  });

  it("takes the firmware given over the one detected, and refuses an unknown one", async () => {
    writeFileSync(path.join(t.env.imagesDir, "blank.img"), Buffer.alloc(1024 * 1024));
    expect(await api.image.import({ name: "blank-uefi", path: "blank.img", firmware: "uefi" })).toMatchObject({ firmware: "uefi" });
    // @ts-expect-error: not a firmware Hangar knows
    const refused = await refusal(api.image.import({ name: "blank-coreboot", path: "blank.img", firmware: "coreboot" }));
    expect(refused.code).toBe("BAD_REQUEST");
    expect(refused.message).toMatch(/firmware must be/);
  });
});

describe("network modes and port forwards", () => {
  it("creates VMs in nat by default, refuses a bridge nobody opened, and keeps SSH's port across starts", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "netted", imageId });
    expect(vm.network).toBe("nat");
    const bridged = await refusal(api.vm.create({ ...goodSpec, name: "bridged", imageId, network: "bridge", bridge: "br0" }));
    expect(bridged).toEqual({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/^No host bridge is open to VMs on host \S+; an admin lists them in HANGAR_BRIDGES\.$/),
    });
    expect(await refusal(api.vm.create({ ...goodSpec, name: "bridged", imageId, network: "bridge" }))).toEqual({
      code: "BAD_REQUEST",
      message: 'Name the host bridge a VM on network "bridge" joins; the Hosts page lists each host\'s bridges.',
    });
    expect((await refusal(api.vm.create({ ...goodSpec, name: "bridged", imageId, network: "isolated", bridge: "br0" }))).code).toBe("BAD_REQUEST");

    const first = await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart?.network).toEqual({ mode: "nat" });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart?.sshPreferredPort).toBe(first.sshPort);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("restarts a running VM as a stop then a start, each its own event, and nothing else", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "restarted", imageId });
    expect(await refusal(api.vm.restart({ id: vm.id }))).toEqual({
      code: "PRECONDITION_FAILED",
      message: 'VM "restarted" is Stopped; only a running VM restarts (start it instead).',
    });
    await api.vm.start({ id: vm.id });
    const again = await api.vm.restart({ id: vm.id, timeoutSec: 0 });
    expect(again.state).toBe("Running");
    expect(fake.vm(vm.id).calls.filter((call) => call === "start" || call === "stop")).toEqual(["start", "stop", "start"]);
    const events = (await api.vm.events({ vmId: vm.id, limit: 20 })).events
      .filter((e) => e.action === "start" || e.action === "stop")
      .map((e) => [e.action, e.fromState, e.toState]);
    expect(events).toEqual([
      ["start", "Stopped", "Running"],
      ["stop", "Running", "Stopped"],
      ["start", "Stopped", "Running"],
    ]);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("reports a running VM's addresses from its guest agent, and says why there are none", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "bridged", imageId });
    expect(await api.vm.addresses({ id: vm.id })).toEqual({
      interfaces: null,
      detail: 'VM "bridged" is Stopped; its guest reports its addresses while it runs.',
    });
    await api.vm.start({ id: vm.id });
    expect(await api.vm.addresses({ id: vm.id })).toMatchObject({ interfaces: null, detail: expect.stringMatching(/^No guest agent reports them/) });
    const lan = { name: "eth1", mac: "52:54:00:12:34:57", addresses: [{ family: "ipv4" as const, address: "192.168.1.57", prefix: 24 }] };
    fake.vm(vm.id).guestInterfaces = [lan];
    expect(await api.vm.addresses({ id: vm.id })).toEqual({ interfaces: [lan], detail: "Reported by the guest agent." });
    expect(await refusal(api.vm.addresses({ id: "nosuchvm" }))).toMatchObject({ code: "NOT_FOUND" });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("reads the end of a VM's serial console alone, as vm.get has it", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "printing", imageId });
    expect(await api.vm.serialTail({ id: vm.id })).toEqual({ text: "" });
    fake.vm(vm.id).serialLog = `${"x".repeat(20_000)}\nprinting login: `;
    const { text } = await api.vm.serialTail({ id: vm.id });
    expect(text).toHaveLength(16 * 1024);
    expect(text.endsWith("\nprinting login: ")).toBe(true);
    expect((await api.vm.get({ id: vm.id })).serialTail).toBe(text);
    expect(await refusal(api.vm.serialTail({ id: "nosuchvm" }))).toMatchObject({ code: "NOT_FOUND" });
  });

  it("adds and removes forwards on a stopped and on a running VM", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "forwarded", imageId });
    const onStopped = await api.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 80 });
    expect(onStopped.boundPort).toBeNull();
    expect(fake.vm(vm.id).calls).not.toContain("forward+80");

    await api.vm.start({ id: vm.id });
    const bound = (await api.vm.get({ id: vm.id })).ports.find((p) => p.guestPort === 80)?.boundPort;
    expect(bound).toBeTypeOf("number");
    const live = await api.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 8443 });
    expect(live.boundPort).toBe(58443);
    expect(fake.vm(vm.id).calls).toContain("forward+8443");
    const again = await refusal(api.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 8443 }));
    expect(again).toEqual({ code: "CONFLICT", message: 'Guest port 8443 of VM "forwarded" is already forwarded; remove that forward first.' });
    expect((await refusal(api.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 22 }))).code).toBe("BAD_REQUEST");

    await api.vm.removeForward({ id: vm.id, guestPort: 8443 });
    expect(fake.vm(vm.id).calls).toContain("forward-58443");
    expect((await api.vm.get({ id: vm.id })).ports.map((p) => p.guestPort)).toEqual([80]);
    expect((await refusal(api.vm.removeForward({ id: vm.id, guestPort: 8443 }))).code).toBe("NOT_FOUND");

    // The next start takes the port the forward had, while it is free.
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart?.ports).toEqual([{ hostPort: 0, guestPort: 80, preferred: bound }]);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("refuses a fixed host port another VM forwards", async () => {
    const a = await api.vm.create({ ...goodSpec, name: "holder", imageId, ports: [{ hostPort: 18080, guestPort: 80 }] });
    const b = await api.vm.create({ ...goodSpec, name: "wanter", imageId });
    expect(await refusal(api.vm.addForward({ id: b.id, hostPort: 18080, guestPort: 80 }))).toEqual({
      code: "CONFLICT",
      message: 'Host port 18080 is already forwarded to VM "holder".',
    });
    expect(a.ports).toHaveLength(1);
  });
});

describe("disks and stops", () => {
  it("creates a disk of the asked size, grows it while stopped or running, and says why it will not", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "roomy", imageId, diskGiB: 8 });
    expect(vm.diskGiB).toBe(8);
    expect(vm.disk?.virtualBytes).toBe(8 * 1024 ** 3);
    expect((await api.vm.resizeDisk({ id: vm.id, diskGiB: 10 }))?.virtualBytes).toBe(10 * 1024 ** 3);
    expect(await refusal(api.vm.resizeDisk({ id: vm.id, diskGiB: 4 }))).toEqual({
      code: "BAD_REQUEST",
      message: 'The disk of VM "roomy" is 10 GiB; disks only grow, so ask for more.',
    });
    await api.snapshot.create({ id: vm.id, name: "s1" });
    expect((await refusal(api.vm.resizeDisk({ id: vm.id, diskGiB: 12 }))).message).toMatch(/has snapshots.*delete them first/);
    await api.snapshot.delete({ id: vm.id, name: "s1" });
    await api.vm.start({ id: vm.id });
    expect((await api.vm.resizeDisk({ id: vm.id, diskGiB: 12 }))?.virtualBytes).toBe(12 * 1024 ** 3);
    // The ready condition's event, recorded once the start's readiness watch settles, may come after it.
    const grown = (await api.vm.events({ vmId: vm.id, limit: 2 })).events.filter((event) => event.message.startsWith("Disk grown"));
    expect(grown.map((event) => event.message)).toEqual([expect.stringMatching(/^Disk grown to 12 GiB while running: the guest sees it now;/)]);
    // A saved state holds the disk's size.
    await api.vm.suspend({ id: vm.id });
    expect((await refusal(api.vm.resizeDisk({ id: vm.id, diskGiB: 14 }))).message).toBe(
      'VM "roomy" is Suspended; its disk grows while it is Stopped or Running.',
    );
    expect((await api.vm.get({ id: vm.id })).diskGiB).toBe(12);
    await api.vm.start({ id: vm.id });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("speaks of the guest's clock after a live revert only while a guest runs", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "reverted", imageId });
    await api.vm.start({ id: vm.id });
    await api.snapshot.create({ id: vm.id, name: "s1" });
    const revertMessage = async () => {
      await api.snapshot.revert({ id: vm.id, name: "s1" });
      // The newest revert's: the ready condition's event after the start may come later.
      return (await api.vm.events({ vmId: vm.id, limit: 3 })).events.find((event) => event.action === "snapshot-revert")?.message;
    };
    expect(await revertMessage()).toMatch(/^Snapshot s1 \(\d+ ms\); no guest agent answered: the guest's clock is at the snapshot's time/);
    // Its qemu ended just before (the reconciler has not seen it yet): the disk was reverted, no guest.
    fake.vm(vm.id).running = false;
    expect(await revertMessage()).toMatch(/^Snapshot s1 \(\d+ ms\)$/);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("locks a VM while a snapshot is taken, as Proxmox does: actions on it meanwhile are refused with CONFLICT, then go through", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "locked", imageId });
    fake.snapshotDelayMs = 400;
    try {
      const untilLocked = async () => {
        while (!t.hangar.lifecycle.isBusy(vm.id)) await new Promise((resolve) => setTimeout(resolve, 5));
      };
      // Stopped: qemu-img works on the disk; a start, a delete, a disk resize or a clone would meet it there.
      const taking = api.snapshot.create({ id: vm.id, name: "s1" });
      await untilLocked();
      expect(await refusal(api.vm.start({ id: vm.id }))).toEqual({
        code: "CONFLICT",
        message: 'VM "locked" is busy taking snapshot s1; start it once that is done.',
      });
      expect(await refusal(api.vm.delete({ id: vm.id }))).toEqual({
        code: "CONFLICT",
        message: 'VM "locked" is busy taking snapshot s1; delete it once that is done.',
      });
      expect((await refusal(api.snapshot.create({ id: vm.id, name: "s2" }))).code).toBe("CONFLICT");
      expect((await refusal(api.vm.resizeDisk({ id: vm.id, diskGiB: 20 }))).code).toBe("CONFLICT");
      expect(await refusal(api.vm.clone({ id: vm.id, name: "locked-copy" }))).toEqual({
        code: "CONFLICT",
        message: 'VM "locked" has an action under way; clone it once it settles.',
      });
      expect(await t.hangar.db.vm.findUnique({ where: { name: "locked-copy" } })).toBeNull();
      await taking;
      expect((await api.snapshot.list({ id: vm.id })).map((s) => s.name)).toEqual(["s1"]);

      // Running: savevm in the running qemu; a stop waits for it to end.
      await api.vm.start({ id: vm.id });
      const again = api.snapshot.create({ id: vm.id, name: "s2" });
      await untilLocked();
      expect(await refusal(api.vm.stop({ id: vm.id, timeoutSec: 0 }))).toEqual({
        code: "CONFLICT",
        message: 'VM "locked" is busy taking snapshot s2; stop it once that is done.',
      });
      await again;
      expect((await api.vm.get({ id: vm.id })).state).toBe("Running");
      await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    } finally {
      fake.snapshotDelayMs = 0;
    }
  });

  it("changes a stopped VM's CPUs and memory for its next start, and says why it will not", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "bigger", imageId });
    expect(await refusal(api.vm.resize({ id: vm.id }))).toEqual({ code: "BAD_REQUEST", message: "Give cpus, memoryMiB or both." });
    expect(await refusal(api.vm.resize({ id: vm.id, cpus: 0 }))).toEqual({ code: "BAD_REQUEST", message: "cpus: A VM needs at least 1 CPU." });
    expect(await api.vm.resize({ id: vm.id, cpus: 2, memoryMiB: 512 })).toEqual({ cpus: 2, memoryMiB: 512 });
    expect(await api.vm.get({ id: vm.id })).toMatchObject({ cpus: 2, memoryMiB: 512 });
    const [event] = (await api.vm.events({ vmId: vm.id, limit: 1 })).events;
    expect(event).toMatchObject({ action: "resize", ok: true, message: "CPUs 1 → 2, memory 256 → 512 MiB; in effect from the next start" });
    await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart).toMatchObject({ cpus: 2, memoryMiB: 512 });
    expect(await refusal(api.vm.resize({ id: vm.id, cpus: 4 }))).toEqual({
      code: "CONFLICT",
      message: 'VM "bigger" is Running; stop it before changing its CPUs or memory.',
    });
    await api.vm.suspend({ id: vm.id });
    expect((await refusal(api.vm.resize({ id: vm.id, memoryMiB: 1024 }))).message).toBe(
      'VM "bigger" is Suspended, and its saved state needs the CPUs and memory it was suspended with; start it and stop it first.',
    );
    await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart).toMatchObject({ resume: true, cpus: 2, memoryMiB: 512 });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("renames a VM in any state; its events keep their names, the next boot gets the new hostname", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "old-name", imageId });
    await api.vm.create({ ...goodSpec, name: "taken-name", imageId });
    expect(await refusal(api.vm.rename({ id: vm.id, name: "taken-name" }))).toEqual({
      code: "CONFLICT",
      message: 'A VM named "taken-name" already exists; pick another name.',
    });
    expect((await refusal(api.vm.rename({ id: vm.id, name: "Not_A_Label" }))).code).toBe("BAD_REQUEST");
    await api.vm.start({ id: vm.id });
    expect(await api.vm.rename({ id: vm.id, name: "new-name" })).toMatchObject({ name: "new-name", state: "Running" });
    const events = (await api.vm.events({ vmId: vm.id, limit: 50 })).events;
    // The boot's ready event may land after the rename: the rename's own event, whatever its place.
    expect(events.find((e) => e.action === "rename")).toMatchObject({
      action: "rename",
      vmName: "new-name",
      message: "Renamed from old-name; the guest takes the new hostname at its next boot",
    });
    expect(events.find((e) => e.action === "create")?.vmName).toBe("old-name");
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.start({ id: vm.id });
    expect(fake.vm(vm.id).lastStart?.hostname).toBe("new-name");
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    // The old name is free again.
    expect((await api.vm.create({ ...goodSpec, name: "old-name", imageId })).name).toBe("old-name");
  });

  it("lists a deleted VM's events by the name it had (its id is gone from them), beside a new VM's of that name", async () => {
    const first = await api.vm.create({ ...goodSpec, name: "reused", imageId });
    await api.vm.delete({ id: first.id });
    const second = await api.vm.create({ ...goodSpec, name: "reused", imageId });
    const byName = (await api.vm.events({ vmName: "reused", limit: 50 })).events;
    // A create also records its disk's clone.
    expect(byName.filter((e) => e.action !== "clone").map((e) => [e.action, e.vmId])).toEqual([
      ["create", second.id],
      ["delete", null],
      ["create", null],
    ]);
    const both = (await api.vm.events({ vmName: "reused", vmId: second.id, limit: 50 })).events;
    expect(both.map((e) => [e.action, e.vmId]).sort()).toEqual([
      ["clone", second.id],
      ["create", second.id],
    ]);
    expect((await api.vm.events({ vmName: "never-was", limit: 50 })).events).toEqual([]);
  });

  it("keeps what a VM is for on its page, not in list rows, and refuses an essay", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "described", imageId, description: "  CI runner for the web team\n(ask Ana)  " });
    expect((await api.vm.get({ id: vm.id })).description).toBe("CI runner for the web team\n(ask Ana)");
    expect((await api.vm.list({ search: "described" })).items[0]).not.toHaveProperty("description");
    // The marks of a restart or release under way are the server's own, in no answer.
    for (const mark of ["restartPending", "releasePending"]) {
      expect(await api.vm.get({ id: vm.id })).not.toHaveProperty(mark);
      expect((await api.vm.list({ search: "described" })).items[0]).not.toHaveProperty(mark);
    }
    expect(await api.vm.describe({ id: vm.id, description: "" })).toEqual({ description: "" });
    const [event] = (await api.vm.events({ vmId: vm.id, limit: 1 })).events;
    expect(event).toMatchObject({ action: "describe", message: "Description removed" });
    expect(await refusal(api.vm.describe({ id: vm.id, description: "x".repeat(2001) }))).toEqual({
      code: "BAD_REQUEST",
      message: "description is at most 2,000 characters.",
    });
    expect((await api.vm.clone({ id: vm.id, name: "described-copy" })).description).toBe("");
  });

  it("tags VMs (lowercased, sorted, each once), lists them by tag, and refuses what is not a tag", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "tagged", imageId, tags: ["Web", "ci", "web"] });
    expect(vm.tags).toEqual(["ci", "web"]);
    expect((await api.vm.list({ tag: "Web" })).items.map((row) => row.name)).toEqual(["tagged"]);
    expect(await api.vm.setTags({ id: vm.id, tags: ["db", "team-a", "v1.2"] })).toEqual({ tags: ["db", "team-a", "v1.2"] });
    expect((await api.vm.get({ id: vm.id })).tags).toEqual(["db", "team-a", "v1.2"]);
    expect((await api.vm.list({ tag: "web" })).total).toBe(0);
    const [event] = (await api.vm.events({ vmId: vm.id, limit: 1 })).events;
    expect(event).toMatchObject({ action: "tags", message: "Tags: db, team-a, v1.2" });
    expect((await api.vm.clone({ id: vm.id, name: "tagged-copy" })).tags).toEqual(["db", "team-a", "v1.2"]);
    expect(await api.vm.listTags()).toEqual([
      { tag: "db", vms: 2 },
      { tag: "team-a", vms: 2 },
      { tag: "v1.2", vms: 2 },
    ]);

    expect(await refusal(api.vm.setTags({ id: vm.id, tags: ["web", "-web"] }))).toEqual({
      code: "BAD_REQUEST",
      message: '"-web" is not a tag: a tag is 1 to 32 letters, digits, _ . + and -, starting with a letter or digit.',
    });
    expect(await refusal(api.vm.setTags({ id: vm.id, tags: ["../../etc/passwd"] }))).toEqual({
      code: "BAD_REQUEST",
      message: "One of those is not a tag: a tag is 1 to 32 letters, digits, _ . + and -, starting with a letter or digit.",
    });
    expect(await refusal(api.vm.setTags({ id: vm.id, tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }))).toEqual({
      code: "BAD_REQUEST",
      message: "A VM has at most 16 tags; this is 17.",
    });
    expect(await refusal(api.vm.create({ ...goodSpec, name: "badly-tagged", imageId, tags: ["a b"] }))).toMatchObject({ code: "BAD_REQUEST" });
    expect(await api.vm.setTags({ id: vm.id, tags: [] })).toEqual({ tags: [] });
    expect((await api.vm.list({ search: "tagged" })).items.find((row) => row.id === vm.id)?.tags).toEqual([]);
  });

  it("keeps a protected VM from deletion until its protection is off", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "precious", imageId });
    expect(await api.vm.setProtection({ id: vm.id, protection: true })).toEqual({ protection: true });
    expect((await api.vm.list({ search: "precious" })).items[0]?.protection).toBe(true);
    expect(await refusal(api.vm.delete({ id: vm.id }))).toEqual({
      code: "PRECONDITION_FAILED",
      message: 'VM "precious" is protected from deletion; turn its protection off first.',
    });
    expect(fake.vm(vm.id).calls).not.toContain("delete");
    const [event] = (await api.vm.events({ vmId: vm.id, limit: 1 })).events;
    expect(event).toMatchObject({ action: "protection", message: "Protected from deletion" });
    expect(await api.vm.setProtection({ id: vm.id, protection: false })).toEqual({ protection: false });
    await api.vm.delete({ id: vm.id });
  });

  it("makes an image of a stopped VM's disk that new VMs boot from, and leaves nothing when it fails", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "golden", imageId });
    const image = await api.vm.publish({ id: vm.id, name: "golden-image" });
    expect(image).toMatchObject({ name: "golden-image", status: "ready", format: "qcow2", firmware: "bios", loginUser: "hangar" });
    expect(path.dirname(image.path)).toBe(t.env.imagesDir);
    expect(existsSync(image.path)).toBe(true);
    const [event] = (await api.vm.events({ vmId: vm.id, limit: 1 })).events;
    expect(event).toMatchObject({ action: "publish", ok: true, message: "Image golden-image made from its disk" });
    const child = await api.vm.create({ ...goodSpec, name: "from-golden", imageId: image.id });
    expect(child.state).toBe("Stopped");

    expect(await refusal(api.vm.publish({ id: vm.id, name: "golden-image" }))).toEqual({
      code: "CONFLICT",
      message: 'An image named "golden-image" already exists; pick another name.',
    });
    fake.failNext.set("export", new Error("qemu-img: Could not open '/var/lib/hangar/vms/x/disk.qcow2': No space left on device"));
    const failed = await refusal(api.vm.publish({ id: vm.id, name: "golden-two" }));
    expect(failed.code).toBe("INTERNAL_SERVER_ERROR");
    expect(failed.message).toMatch(/^Making an image of VM "golden"'s disk failed: /);
    expect(failed.message).not.toContain("/var/lib");
    expect(await t.hangar.db.image.findUnique({ where: { name: "golden-two" } })).toBeNull();
    expect(readdirSync(t.env.imagesDir).filter((file) => file.startsWith(".import-"))).toEqual([]);

    await api.vm.start({ id: vm.id });
    expect(await refusal(api.vm.publish({ id: vm.id, name: "golden-three" }))).toEqual({
      code: "CONFLICT",
      message: 'VM "golden" is Running; stop it before making an image of its disk.',
    });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("records how a stop ended, a forced one as forced", async () => {
    const vm = await api.vm.create({ ...goodSpec, name: "stubborn", imageId });
    await api.vm.start({ id: vm.id });
    await api.vm.stop({ id: vm.id, timeoutSec: 5 });
    expect((await api.vm.get({ id: vm.id })).lastStop?.message).toBe("Powered off after 0.0 s");
    fake.stopHow = "killed";
    try {
      await api.vm.start({ id: vm.id });
      await api.vm.stop({ id: vm.id, timeoutSec: 5 });
    } finally {
      fake.stopHow = "powered-off";
    }
    const lastStop = (await api.vm.get({ id: vm.id })).lastStop;
    expect(lastStop?.message).toBe("Forced: the guest did not power off within 5.0 s and qemu did not quit, so it was killed");
  });
});
