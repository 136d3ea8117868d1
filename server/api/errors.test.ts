// What callers see when things go wrong: input is checked before any database access, unique
// races are CONFLICT, and no message carries a host path, argv, SQL or a stack; the log does.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { TRPCError } from "@trpc/server";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { userMessage, withoutHostPaths } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createCaller } from "./root.ts";
import { IN_PROCESS } from "./trpc.ts";
import { malformedText } from "./schemas.ts";
import { logger } from "../log.ts";

let t: TestHangar;
let fake: FakeDriver;
let admin: Awaited<ReturnType<typeof callerFor>>;
let operator: Awaited<ReturnType<typeof callerFor>>;
let viewer: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;

beforeAll(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  admin = await callerFor(t.hangar, "admin");
  operator = await callerFor(t.hangar, "operator");
  viewer = await callerFor(t.hangar, "viewer");
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
});
afterAll(() => t.cleanup());

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

/** An operator's caller whose Prisma client counts every query it runs. */
async function countingOperator() {
  let queries = 0;
  const db = t.hangar.db.$extends({ query: { $allOperations: ({ args, query }) => (queries++, query(args)) } });
  const hangar: Hangar = { ...t.hangar, db: db as unknown as Hangar["db"] };
  const user = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "operator@test.hangar" } });
  const caller = createCaller({
    hangar,
    transport: IN_PROCESS,
    principal: { userId: user.id, email: user.email, role: "operator", via: "session" },
    actor: user.email,
  });
  return { caller, queries: () => queries };
}

describe("input that is not well-formed text", () => {
  const lone = "\ud800";

  it("is refused with BAD_REQUEST and a sentence, before any database access", async () => {
    const { caller, queries } = await countingOperator();
    // Called one at a time, so no refusal waits unobserved.
    const attempts = [
      () => caller.vm.start({ id: lone }),
      () => caller.vm.events({ vmId: lone, limit: 10 }),
      () => caller.vm.events({ cursor: `abc${lone}`, limit: 10 }),
      () => caller.token.revoke({ id: lone }),
      () => caller.pool.release({ vmId: lone }),
      () => caller.vm.exec({ id: "abc", command: ["echo", lone] }),
      () => caller.vm.create({ name: "ok", imageId: "abc", cpus: 1, memoryMiB: 128, userData: `#cloud-config\n${lone}` }),
      () => caller.vm.sync({ id: "abc", from: "a\0b", to: "/tmp" }),
    ];
    for (const attempt of attempts) {
      const { code, message } = await refusal(attempt());
      expect(code).toBe("BAD_REQUEST");
      expect(message).toMatch(/^(id|vmId|cursor|command\.1|userData|from) (is not well-formed Unicode text|contains a NUL character)/);
    }
    expect(queries()).toBe(0);
  });

  it("is refused for viewers and admins too, wherever it hides in the input", async () => {
    expect(await refusal(viewer.vm.events({ vmId: lone, limit: 5 }))).toMatchObject({ code: "BAD_REQUEST" });
    expect(await refusal(viewer.token.revoke({ id: lone }))).toMatchObject({ code: "BAD_REQUEST" });
    expect(await refusal(admin.user.update({ id: lone, role: "viewer" }))).toMatchObject({ code: "BAD_REQUEST" });
    expect(await refusal(admin.audit.list({ userId: lone }))).toMatchObject({ code: "BAD_REQUEST" });
    const hidden = { id: "abc", [`key${lone}`]: 1 } as unknown as { id: string };
    expect(await refusal(admin.vm.get(hidden))).toEqual({
      code: "BAD_REQUEST",
      message: "A key in the input is not well-formed Unicode text (it has a lone surrogate).",
    });
  });

  it.each<[string, unknown, string | undefined]>([
    ["plain text, emoji and numbers", { name: "ok", note: "🚀 é", n: 1, list: ["a", 2, null] }, undefined],
    ["a lone high surrogate", { id: "\ud800" }, "id is not well-formed Unicode text (it has a lone surrogate)."],
    ["a lone low surrogate deep in a list", { a: { b: ["x", "\udc00"] } }, "a.b.1 is not well-formed Unicode text (it has a lone surrogate)."],
    ["swapped surrogates", "\udc00\ud800", "The input is not well-formed Unicode text (it has a lone surrogate)."],
    ["a NUL", { command: ["echo", "a\0b"] }, "command.1 contains a NUL character, which no field accepts."],
    ["a bad key", { ["k\ud800"]: 1 }, "A key in the input is not well-formed Unicode text (it has a lone surrogate)."],
    ["a Map value", new Map([["id", "\ud800"]]), "id is not well-formed Unicode text (it has a lone surrogate)."],
    [
      "more values than any procedure takes",
      { list: Array.from({ length: 10_001 }, () => 0) },
      "The input has more than 10000 values; no procedure takes that many.",
    ],
  ])("malformedText: %s", (_label, input, problem) => {
    expect(malformedText(input)).toBe(problem);
  });

  it("accepts surrogate pairs (emoji) where text is free", async () => {
    const vm = await admin.vm.create({ name: "emoji", imageId, cpus: 1, memoryMiB: 128, userData: "#cloud-config\n# 🚀\n" });
    expect((await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).userData).toContain("🚀");
  });
});

describe("ids", () => {
  it("are checked with the id schema by the ownership check, the token and user procedures", async () => {
    const attempts = [
      () => operator.vm.start({ id: "../etc" }),
      () => operator.token.revoke({ id: "A B" }),
      () => admin.user.remove({ id: "a/b" }),
      () => admin.audit.list({ cursor: "X" }),
    ];
    for (const attempt of attempts) {
      expect((await refusal(attempt())).code).toBe("BAD_REQUEST");
    }
  });
});

describe("unique races", () => {
  const racers = 8;
  const outcome = async (attempts: Promise<unknown>[]) => {
    const settled = await Promise.allSettled(attempts);
    const codes = settled.map((s) => (s.status === "fulfilled" ? "ok" : s.reason instanceof TRPCError ? s.reason.code : String(s.reason)));
    return {
      ok: codes.filter((c) => c === "ok").length,
      conflicts: codes.filter((c) => c === "CONFLICT").length,
      messages: settled.flatMap((s) => (s.status === "rejected" ? [String((s.reason as Error).message)] : [])),
    };
  };

  it("end with one success and CONFLICTs naming what is taken: vm.create, pool.create, token.create, user.add", async () => {
    const spec = { imageId, cpus: 1, memoryMiB: 128 };
    const races = {
      vm: await outcome(Array.from({ length: racers }, () => admin.vm.create({ name: "same", ...spec }))),
      pool: await outcome(Array.from({ length: racers }, () => admin.pool.create({ name: "same", ...spec, size: 0, staging: "Stopped" }))),
      token: await outcome(Array.from({ length: racers }, () => operator.token.create({ name: "same" }))),
      user: await outcome(
        Array.from({ length: racers }, () => admin.user.add({ email: "same@test.hangar", name: "same", password: "a long password", role: "viewer" })),
      ),
    };
    for (const [what, race] of Object.entries(races)) {
      expect({ what, ok: race.ok, conflicts: race.conflicts }).toEqual({ what, ok: 1, conflicts: racers - 1 });
      for (const message of race.messages) expect(message).toMatch(/already exists|already have/);
    }
    expect(races.vm.messages.some((m) => m === "A VM with that name already exists; pick another.")).toBe(true);
    expect(await t.hangar.db.vm.count({ where: { name: "same" } })).toBe(1);
  });
});

/** A logger.error call: its message, and its `err` field as text. */
function logLine(call: unknown[]): { message: string; error: string } {
  const [fields, message] = call;
  const error = fields !== null && typeof fields === "object" && "err" in fields ? String(fields.err) : "";
  return { message: String(message), error };
}

describe("messages", () => {
  it("turn an unexpected error into 'internal error <id>', with the details in the log", async () => {
    const log = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    try {
      const secret = path.join(t.env.stateDir, "vms", "x", "serial.log");
      const hangar: Hangar = {
        ...t.hangar,
        driverFor: (id) => ({ ...fake.managerFor(id), serialTail: () => Promise.reject(new Error(`EACCES: permission denied, open '${secret}'`)) }),
      };
      const vm = await admin.vm.create({ name: "broken", imageId, cpus: 1, memoryMiB: 128 });
      const caller = createCaller({
        hangar,
        transport: IN_PROCESS,
        principal: { userId: "someone", email: "v@test.hangar", role: "viewer", via: "session" },
        actor: "v@test.hangar",
      });
      const refused = await refusal(caller.vm.get({ id: vm.id }));
      expect(refused.code).toBe("INTERNAL_SERVER_ERROR");
      expect(refused.message).toMatch(/^internal error [0-9a-f]{8}$/);
      const incident = refused.message.slice("internal error ".length);
      const logged = log.mock.calls.map(logLine).find((line) => line.message.includes(incident));
      expect(logged?.message).toContain("vm.get");
      expect(logged?.error).toContain(secret);
    } finally {
      log.mockRestore();
    }
  });

  it.each([
    ["Could not open '/var/lib/hangar/vms/a/disk.qcow2': No such file", "Could not open '…/disk.qcow2': No such file"],
    ["-drive file=/srv/x/disk.qcow2,format=qcow2", "-drive file=…/disk.qcow2,format=qcow2"],
    ["key at /root/.ssh/id_ed25519 (0600)", "key at …/id_ed25519 (0600)"],
    ["fetching https://example.com/a/b.qcow2 failed", "fetching https://example.com/a/b.qcow2 failed"],
    ["read 1/2 of it, and/or more; cwd /", "read 1/2 of it, and/or more; cwd /"],
  ])("shorten host paths: %s", (text, shown) => {
    expect(withoutHostPaths(text)).toBe(shown);
  });

  it("say which tool failed and how, never its command line or host paths", async () => {
    const disk = path.join(t.env.stateDir, "vms", "nosuchvm", "disk.qcow2");
    const failed = await execa("qemu-img", ["info", "--", disk]).catch((error: unknown) => error);
    const message = userMessage(failed);
    expect(message).toMatch(/^qemu-img exited with code 1: qemu-img: Could not open '…\/disk\.qcow2'/);
    expect(message).not.toContain(t.env.stateDir);
    expect(message).not.toContain("info");
    const missing = await execa("no-such-hangar-tool", ["--", disk]).catch((error: unknown) => error);
    expect(userMessage(missing)).toBe("no-such-hangar-tool is not installed on this host");
    const database = await t.hangar.db.vm.create({ data: { name: "target", imageId: "nosuchimage", cpus: 1, memoryMiB: 64 } }).catch((error: unknown) => error);
    expect(userMessage(database)).toBe("a database operation failed");
  });

  it("of a failed vm.sync name rsync's reason, not its command, the key or the sync root; the log has them", async () => {
    const vm = await operator.vm.create({ name: "syncer", imageId, cpus: 1, memoryMiB: 128 });
    await operator.vm.start({ id: vm.id });
    const key = path.join(t.env.stateDir, "vms", vm.id, "id_ed25519");
    const rsync = await execa("rsync", [
      "-a",
      "-e",
      `ssh -i ${key} -p 2222`,
      "--",
      path.join(t.env.syncRoot, "missing") + "/",
      path.join(t.env.stateDir, "dest"),
    ]).catch((e: unknown) => e);
    fake.failNext.set("sync", rsync as Error);
    mkdirSync(path.join(t.env.syncRoot, "site"), { recursive: true });
    const log = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    try {
      const refused = await refusal(operator.vm.sync({ id: vm.id, from: "site/", to: "/srv" }));
      expect(refused.message).toMatch(/^Syncing into VM "syncer" failed: rsync exited with code 23: rsync: \[sender\] change_dir "…\/missing" failed/);
      for (const leak of [key, "-e", "ssh -i", t.env.stateDir, t.env.syncRoot]) expect(refused.message).not.toContain(leak);
      expect(log.mock.calls.map(logLine).some((line) => line.error.includes(key))).toBe(true);
    } finally {
      log.mockRestore();
    }
    const outside = await refusal(operator.vm.sync({ id: vm.id, from: "../../etc", to: "/srv" }));
    expect(outside).toEqual({ code: "BAD_REQUEST", message: "from must name an existing file or directory under the sync root." });
  });

  it("of exec and sync in a VM that stopped meanwhile say so (PRECONDITION_FAILED), not an internal error; forwards keep for its next start", async () => {
    const vm = await operator.vm.create({ name: "gone-away", imageId, cpus: 1, memoryMiB: 128 });
    await operator.vm.start({ id: vm.id });
    mkdirSync(path.join(t.env.syncRoot, "site"), { recursive: true });
    expect((await operator.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 9090 })).boundPort).toBeGreaterThan(0);
    // Its qemu went (a stop racing the call) before the reconciler noticed: the row still says Running.
    fake.vm(vm.id).running = false;
    expect(await refusal(operator.vm.exec({ id: vm.id, command: ["true"] }))).toEqual({
      code: "PRECONDITION_FAILED",
      message: 'VM "gone-away" stopped before the command finished; start it and run the command again.',
    });
    expect(await refusal(operator.vm.sync({ id: vm.id, from: "site/", to: "/srv" }))).toEqual({
      code: "PRECONDITION_FAILED",
      message: 'VM "gone-away" stopped before the files were copied; start it and sync again.',
    });
    expect(await operator.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 8080 })).toMatchObject({ guestPort: 8080, boundPort: null });
    expect(await operator.vm.removeForward({ id: vm.id, guestPort: 8080 })).toEqual({ guestPort: 8080 });
    expect(await operator.vm.removeForward({ id: vm.id, guestPort: 9090 })).toEqual({ guestPort: 9090 });
    expect(await t.hangar.db.portForward.count({ where: { vmId: vm.id } })).toBe(0);
  });

  it("in Vm.error and events are the safe sentence too", async () => {
    const vm = await admin.vm.create({ name: "no-start", imageId, cpus: 1, memoryMiB: 128 });
    const failed = await execa("qemu-img", ["info", "--", path.join(t.env.stateDir, "vms", vm.id, "disk.qcow2")]).catch((e: unknown) => e);
    fake.failNext.set("start", failed as Error);
    const log = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    try {
      expect((await refusal(admin.vm.start({ id: vm.id }))).message).toMatch(/^Starting VM "no-start" failed: qemu-img exited with code 1: /);
    } finally {
      log.mockRestore();
    }
    const row = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } });
    const events = await t.hangar.db.event.findMany({ where: { vmId: vm.id } });
    for (const text of [row.error ?? "", ...events.map((e) => e.message)]) {
      expect(text).not.toContain(t.env.stateDir);
      expect(text).not.toContain("qemu-img info");
    }
    expect(row.error).toMatch(/Start failed: qemu-img exited with code 1/);
  });
});

describe("vm.get", () => {
  it("shows the VM's key path to admins only, from vm.get, vm.start and vm.wait alike", async () => {
    const vm = await operator.vm.create({ name: "keyed", imageId, cpus: 1, memoryMiB: 128 });
    expect(vm.sshKeyPath).toBeNull();
    expect((await admin.vm.get({ id: vm.id })).sshKeyPath).toBe(`/fake/${vm.id}/id_ed25519`);
    expect((await operator.vm.get({ id: vm.id })).sshKeyPath).toBeNull();
    expect((await viewer.vm.get({ id: vm.id })).sshKeyPath).toBeNull();
    expect((await operator.vm.start({ id: vm.id })).sshKeyPath).toBeNull();
    expect((await viewer.vm.wait({ id: vm.id, for: "Running", timeoutSec: 1 }))?.sshKeyPath).toBeNull();
    expect((await admin.vm.wait({ id: vm.id, for: "Running", timeoutSec: 1 }))?.sshKeyPath).toBe(`/fake/${vm.id}/id_ed25519`);
  });
});
