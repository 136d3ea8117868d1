// Every procedure, as admin, operator, viewer and nobody, with hostile input: wrong types,
// missing and extra fields, huge strings and arrays, lone surrogates, NUL, option and shell
// injection, numbers past their limits, and one corrupted field of a valid input. Nothing is
// ever an INTERNAL_SERVER_ERROR; every refusal is a sentence without host paths or database
// text; refused input reaches neither a process nor the driver. Then the same over real HTTP.
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { TRPCError } from "@trpc/server";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Manager } from "../driver/manager.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createTrpcHandler, TRPC_BASE_PATH } from "./http.ts";
import { appRouter, createCaller } from "./root.ts";
import { IN_PROCESS, UNREADABLE_INPUT } from "./trpc.ts";

/** Every process Hangar starts goes through execa: each call is counted here. */
const spawned = vi.hoisted(() => [] as string[]);
vi.mock("execa", async (importOriginal) => {
  const real = await importOriginal<typeof import("execa")>();
  const counted = (...args: unknown[]) => {
    spawned.push(String(args[0]));
    return (real.execa as (...a: unknown[]) => unknown)(...args);
  };
  return { ...real, execa: counted };
});

/** Fixed so a failure can be replayed; HANGAR_FUZZ_SEED explores other runs. */
const SEED = Number(process.env.HANGAR_FUZZ_SEED ?? 20261201);
const RUNS_PER_PROCEDURE = 30;

type Role = "admin" | "operator" | "viewer" | "anonymous";

const SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSG2kZ7+0indab+8xrb/q4/RI19+wBj67zL43PuC4IT fuzz@test";
const OTHER_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other@test";
type Caller = ReturnType<typeof createCaller>;

let t: TestHangar;
const driverCalls: string[] = [];
const callers = {} as Record<Role, Caller>;
let examples: Record<string, unknown>;

/** The fake driver, with every method call of every manager recorded. */
function recorded(fake: FakeDriver) {
  return (vmId: string): Manager =>
    new Proxy(fake.managerFor(vmId), {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          driverCalls.push(`${vmId}.${String(key)}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
}

beforeAll(async () => {
  const fake = new FakeDriver();
  t = await createTestHangar({ driverFor: recorded(fake) });
  // Pools are created and resized here, but nothing fills them behind the test's back.
  await t.hangar.pools.close();
  const admin = await callerFor(t.hangar, "admin");
  const operator = await callerFor(t.hangar, "operator");
  Object.assign(callers, {
    admin,
    operator,
    viewer: await callerFor(t.hangar, "viewer"),
    anonymous: createCaller({ hangar: t.hangar, transport: IN_PROCESS, principal: null, actor: "anonymous" }),
  });
  const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
  const spec = { imageId: image.id, cpus: 1, memoryMiB: 128 };
  const target = await operator.vm.create({ name: "target", ...spec });
  const victim = await operator.vm.create({ name: "victim", ...spec });
  const given = await operator.vm.create({ name: "given", ...spec });
  const operatorId = (await t.hangar.db.user.findFirstOrThrow({ where: { role: "operator" } })).id;
  const pool = await admin.pool.create({ name: "warm", ...spec, size: 0, staging: "Stopped" });
  const doomedPool = await admin.pool.create({ name: "doomed", ...spec, size: 0, staging: "Stopped" });
  const token = await operator.token.create({ name: "ci" });
  const sshKey = await operator.account.addSshKey({ publicKey: SSH_KEY, name: "laptop" });
  const victimUser = await admin.user.add({ email: "victim@test.hangar", name: "victim", password: "a long password", role: "viewer" });
  // One valid input per procedure; the fuzzer corrupts one field at a time. Destructive
  // procedures aim at rows of their own, so the others keep something to act on.
  examples = {
    "vm.list": { search: "tar", state: ["Stopped", "Running"], owner: "mine", sort: "name", order: "desc", limit: 10 },
    "vm.get": { id: target.id },
    "vm.create": { name: "fresh", ...spec, userData: "#cloud-config\n", ports: [{ hostPort: 0, guestPort: 80 }] },
    "vm.start": { id: target.id },
    "vm.stop": { id: target.id, timeoutSec: 0 },
    "vm.suspend": { id: target.id },
    "vm.clone": { id: target.id, name: "copy" },
    "vm.move": { id: target.id, hostId: await t.hangar.hosts.selfId() },
    "vm.delete": { id: victim.id },
    "vm.exec": { id: target.id, command: ["echo", "hi"], timeoutSec: 5 },
    "vm.addMyKeys": { id: target.id },
    "vm.sync": { id: target.id, from: "site/", to: "/srv", excludes: ["*.tmp"], chown: "root:root" },
    "vm.events": { vmId: target.id, limit: 10 },
    "vm.addForward": { id: target.id, hostPort: 0, guestPort: 8080 },
    "vm.removeForward": { id: target.id, guestPort: 8080 },
    "vm.resizeDisk": { id: target.id, diskGiB: 20 },
    "vm.resize": { id: target.id, cpus: 2, memoryMiB: 512 },
    "vm.setAutostart": { id: target.id, autostart: true },
    "vm.rename": { id: target.id, name: "renamed" },
    "vm.publish": { id: target.id, name: "published" },
    "vm.describe": { id: target.id, description: "the web team's CI runner" },
    "vm.setTags": { id: target.id, tags: ["web", "team-a"] },
    "vm.restart": { id: target.id, timeoutSec: 0 },
    "vm.setProtection": { id: target.id, protection: true },
    "vm.setOwner": { id: given.id, ownerId: operatorId },
    "vm.listTags": undefined,
    "vm.addresses": { id: target.id },
    "vm.serialTail": { id: target.id },
    "vm.onChange": undefined,
    "vm.wait": { id: target.id, for: "Stopped", timeoutSec: 1 },
    "image.list": undefined,
    "image.import": { name: "imported", path: "missing.qcow2" },
    "image.get": { id: image.id },
    "image.delete": { id: image.id },
    "snapshot.list": { id: target.id },
    "snapshot.create": { id: target.id, name: "snap1" },
    "snapshot.revert": { id: target.id, name: "snap1" },
    "snapshot.delete": { id: target.id, name: "snap1" },
    "pool.list": undefined,
    "pool.create": { name: "another", ...spec, size: 0, staging: "Stopped" },
    "pool.resize": { id: pool.id, size: 0 },
    "pool.delete": { id: doomedPool.id },
    // A pool that does not exist: a real one would wait up to timeoutSec for a member.
    "pool.acquire": { poolId: "nosuchpool", timeoutSec: 1 },
    "pool.release": { vmId: target.id },
    "account.me": undefined,
    "account.createFirstAdmin": { email: "first@test.hangar", name: "first", password: "a long password" },
    "account.sshKeys": undefined,
    "account.addSshKey": { publicKey: OTHER_SSH_KEY, name: "desk" },
    "account.changePassword": { currentPassword: "not the password", newPassword: "a new long password" },
    "account.removeSshKey": { id: sshKey.id },
    "user.list": undefined,
    "user.add": { email: "added@test.hangar", name: "added", password: "a long password", role: "viewer" },
    "user.update": { id: victimUser.id, role: "operator", maxVms: 3 },
    "user.setPassword": { id: victimUser.id, password: "a new long password" },
    "user.remove": { id: victimUser.id },
    "token.list": undefined,
    "token.create": { name: "deploy", expiresInDays: 30 },
    "token.revoke": { id: token.id },
    "audit.list": { stream: "vm", vmId: target.id, action: "start", limit: 10 },
    "audit.vmNames": undefined,
    "host.list": undefined,
    "host.evacuate": { id: await t.hangar.hosts.selfId() },
    "host.restore": { id: await t.hangar.hosts.selfId() },
    "host.remove": { id: await t.hangar.hosts.selfId() },
    "terminal.sessions": undefined,
    "terminal.ticket": { vmId: target.id, kind: "console" },
    "metrics.vm": { id: target.id, range: "1h" },
    "metrics.host": { range: "24h" },
    "metrics.hosts": undefined,
    "metrics.onVm": { id: target.id },
    "metrics.onUsage": undefined,
  };
  console.log(`fuzz seed ${SEED} (HANGAR_FUZZ_SEED=${SEED} replays it)`);
});
afterAll(() => t.cleanup());

// Hostile values.
const hostileStrings = [
  "\ud800",
  "\udfff",
  "ok\ud800",
  "\udc00\ud800",
  "\0",
  "a\0b",
  "\n",
  "two\nlines",
  "\r\n",
  "../../etc/shadow",
  "/etc/passwd",
  "-oProxyCommand=sh",
  "--help",
  "$(id)",
  "`id`",
  "; rm -rf /",
  "%00",
  "\u202e",
  "🚀",
  "Ⅻ",
  "ＡＢＣ",
  "",
  " ",
  "__proto__",
  "constructor",
  "a".repeat(64),
  "a".repeat(100_000),
];
const hostileNumbers = [
  0,
  -0,
  -1,
  1,
  63,
  64,
  65,
  255,
  1023,
  1024,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  0.5,
  NaN,
  Infinity,
  -Infinity,
];
let deep: unknown = "bottom";
for (let i = 0; i < 2000; i++) deep = { nested: deep };
const leaf = fc.oneof(
  fc.constantFrom(...hostileStrings),
  fc.constantFrom(...hostileNumbers),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constantFrom(null, undefined),
  fc.bigInt(),
  fc.date(),
);
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  leaf,
  fc.array(leaf, { maxLength: 6 }),
  fc.dictionary(fc.string({ maxLength: 10 }), leaf, { maxKeys: 4 }),
  fc.constantFrom(
    Array.from({ length: 20_000 }, () => "x"),
    Array.from({ length: 5000 }, () => 1),
    deep,
    [[[[[]]]]],
    new Map([["id", "x"]]),
    new Set(["x"]),
  ),
  fc.anything({ maxDepth: 3 }),
);

const REMOVE = Symbol("remove");

/** A value for one field: hostile on its own, or the valid value with something hostile inside. */
function fieldValue(valid: unknown): fc.Arbitrary<unknown> {
  const inside =
    typeof valid === "string"
      ? fc.tuple(fc.constantFrom(...hostileStrings.slice(0, 19)), fc.nat(valid.length)).map(([bad, at]) => `${valid.slice(0, at)}${bad}${valid.slice(at)}`)
      : typeof valid === "number"
        ? fc.constantFrom(...hostileNumbers)
        : hostile;
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...hostileStrings) },
    { weight: 3, arbitrary: inside },
    { weight: 1, arbitrary: fc.constant(REMOVE) },
    { weight: 3, arbitrary: hostile },
  );
}

/** The valid example with one field removed, replaced, added, or one list item replaced. */
function corrupted(example: unknown): fc.Arbitrary<unknown> {
  if (example === null || typeof example !== "object") return hostile;
  const record = example as Record<string, unknown>;
  const field = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...Object.keys(record)) },
    { weight: 1, arbitrary: fc.constantFrom("extra", "__proto__", "constructor") },
  );
  return field.chain((name) => {
    const current = record[name];
    const item = Array.isArray(current) ? current[0] : current;
    return fc.tuple(fieldValue(item), fc.nat(10)).map(([value, index]) => {
      const copy: Record<string, unknown> = { ...record };
      if (value === REMOVE) delete copy[name];
      else if (Array.isArray(current) && index % 2 === 0) copy[name] = current.map((old, i) => (i === index % current.length ? value : old));
      // defineProperty: "__proto__" becomes an own field, as JSON.parse would make it.
      else Object.defineProperty(copy, name, { value, enumerable: true, writable: true, configurable: true });
      return copy;
    });
  });
}

const inputFor = (example: unknown) =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(example) }, { weight: 5, arbitrary: corrupted(example) }, { weight: 2, arbitrary: hostile });

/** Always tried first: each text field of the valid example holding a lone surrogate or a NUL. */
function textCases(example: unknown): [Role, unknown][] {
  if (example === null || typeof example !== "object") return [];
  const cases: [Role, unknown][] = [];
  for (const [name, value] of Object.entries(example)) {
    if (typeof value !== "string") continue;
    for (const bad of [`${value}\ud800`, "\udfff", `${value}\0`])
      for (const role of ["admin", "operator", "viewer"] as const) cases.push([role, { ...example, [name]: bad }]);
  }
  return cases;
}

/** Things no message may carry: host paths, database text, stacks. */
function leaks(message: string): string[] {
  const forbidden = [t.env.stateDir, "/etc/", "/tmp/", "node_modules", "prisma", "Invalid `", "SQLITE", "duplicate key", "violates", "SELECT ", "\n    at "];
  return forbidden.filter((needle) => message.toLowerCase().includes(needle.toLowerCase()));
}

/** Codes that refuse the input itself: nothing may have been run for it. */
const INPUT_REFUSALS = new Set(["BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "PARSE_ERROR"]);

async function call(caller: Caller, procedurePath: string, input: unknown): Promise<unknown> {
  const procedure = procedurePath.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], caller) as (
    input: unknown,
  ) => Promise<unknown>;
  const result = await procedure(input);
  // A subscription that was allowed: stop it before it waits for changes.
  if (result && typeof result === "object" && Symbol.asyncIterator in result) await (result as AsyncIterable<unknown>)[Symbol.asyncIterator]().return?.();
  return result;
}

const procedures = Object.keys(appRouter._def.procedures as unknown as Record<string, unknown>);

describe("fuzzing every procedure through createCaller", () => {
  it("has a valid example for every procedure", () => {
    expect(Object.keys(examples).sort()).toEqual([...procedures].sort());
  });

  it("counts the processes Hangar starts (so an empty count means something)", async () => {
    mkdirSync(t.env.imagesDir, { recursive: true });
    writeFileSync(path.join(t.env.imagesDir, "probe.img"), Buffer.alloc(64 * 1024));
    const before = spawned.length;
    await callers.admin.image.import({ name: "probe", path: "probe.img" });
    await expect.poll(() => spawned.slice(before)).toContain("qemu-img");
  });

  it.each(procedures.map((name, index) => [name, index] as const))(
    "%s: no internal error, a clean sentence, nothing run for refused input",
    async (name, index) => {
      const roles = fc.constantFrom<Role>("admin", "operator", "viewer", "anonymous");
      await fc.assert(
        fc.asyncProperty(roles, inputFor(examples[name]), async (role, input) => {
          const before = { spawned: spawned.length, driverCalls: driverCalls.length };
          const error = await call(callers[role], name, input).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (error === undefined) return;
          if (!(error instanceof TRPCError)) throw new Error(`${name} threw ${String(error)}, not a TRPCError`);
          expect(error.code, `${name} as ${role}: ${error.message}`).not.toBe("INTERNAL_SERVER_ERROR");
          expect(error.message.trim(), `${name} as ${role}`).not.toBe("");
          expect(leaks(error.message), `${name} as ${role}: ${error.message}`).toEqual([]);
          expect(spawned.slice(before.spawned), `${name} as ${role} was refused (${error.code}) but started processes`).toEqual([]);
          if (INPUT_REFUSALS.has(error.code))
            expect(driverCalls.slice(before.driverCalls), `${name} as ${role} was refused (${error.code}) but called the driver`).toEqual([]);
        }),
        { seed: SEED + index, numRuns: RUNS_PER_PROCEDURE, examples: textCases(examples[name]) },
      );
    },
  );
});

describe("fuzzing over real HTTP", () => {
  let server: http.Server;
  let base: string;
  let bearer: string;

  beforeAll(async () => {
    server = http.createServer(createTrpcHandler(t.hangar));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${TRPC_BASE_PATH}`;
    bearer = `Bearer ${(await callers.admin.token.create({ name: "fuzz-http" })).token}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const requests: [string, string, RequestInit][] = [
    ["malformed JSON", "vm.create", { method: "POST", body: "{", headers: { "content-type": "application/json" } }],
    ["a JSON string body", "vm.create", { method: "POST", body: '"hello"', headers: { "content-type": "application/json" } }],
    ["an empty body", "vm.delete", { method: "POST", body: "", headers: { "content-type": "application/json" } }],
    ["text/plain", "vm.create", { method: "POST", body: "name=x", headers: { "content-type": "text/plain" } }],
    ["a form", "vm.create", { method: "POST", body: "name=x&cpus=1", headers: { "content-type": "application/x-www-form-urlencoded" } }],
    [
      "multipart junk",
      "vm.create",
      {
        method: "POST",
        body: "--b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--b--",
        headers: { "content-type": "multipart/form-data; boundary=b" },
      },
    ],
    ["octet-stream", "vm.create", { method: "POST", body: new Uint8Array([0xff, 0xfe, 0x00, 0x80]), headers: { "content-type": "application/octet-stream" } }],
    [
      "bytes that are not UTF-8",
      "vm.create",
      { method: "POST", body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), headers: { "content-type": "application/json" } },
    ],
    ["an escaped lone surrogate", "vm.start", { method: "POST", body: '{"json":{"id":"\\ud800"}}', headers: { "content-type": "application/json" } }],
    [
      "superjson meta that is not a tree",
      "vm.create",
      { method: "POST", body: '{"json":{"name":"x"},"meta":{"values":"garbage"}}', headers: { "content-type": "application/json" } },
    ],
    [
      "a superjson type that does not exist",
      "vm.get",
      { method: "POST", body: '{"json":{"id":"x"},"meta":{"values":{"id":["nonsense"]}}}', headers: { "content-type": "application/json" } },
    ],
    [
      "a superjson custom type without its transformer",
      "vm.get",
      { method: "POST", body: '{"json":{"id":"x"},"meta":{"values":{"id":[["custom","Nope"]]}}}', headers: { "content-type": "application/json" } },
    ],
    [
      "superjson aiming at the prototype",
      "vm.create",
      { method: "POST", body: '{"json":{"__proto__":{"x":1}},"meta":{"values":{"__proto__.x":["Date"]}}}', headers: { "content-type": "application/json" } },
    ],
    [
      "a bigint that is not a number",
      "vm.create",
      { method: "POST", body: '{"json":{"cpus":"one"},"meta":{"values":{"cpus":["bigint"]}}}', headers: { "content-type": "application/json" } },
    ],
    [
      "JSON nested 100000 deep",
      "vm.create",
      { method: "POST", body: `{"json":${"[".repeat(100_000)}${"]".repeat(100_000)}}`, headers: { "content-type": "application/json" } },
    ],
    ["a query as POST", "vm.list", { method: "POST", body: "{}", headers: { "content-type": "application/json" } }],
    ["a mutation as GET", "vm.delete?input=%7B%7D", { method: "GET" }],
    ["bad percent-encoding", "vm.get?input=%ZZ", { method: "GET" }],
    ["input that is not JSON", "vm.get?input=not-json", { method: "GET" }],
    ["a batch with input that is not an object", "vm.get,vm.get?batch=1&input=%5B1%2C2%5D", { method: "GET" }],
    ["a batch of 500 procedures", `${Array.from({ length: 500 }, () => "vm.list").join(",")}?batch=1&input=%7B%7D`, { method: "GET" }],
    ["a batch naming unknown procedures", "nope.nothing,vm.list?batch=1&input=%7B%7D", { method: "GET" }],
    ["an unknown procedure", "nope.nothing", { method: "GET" }],
    ["PUT", "vm.list", { method: "PUT", body: "{}" }],
  ];

  it.each([
    ["a superjson custom type without its transformer", '{"json":{"id":"x"},"meta":{"values":{"id":[["custom","Nope"]]}}}'],
    ["a superjson Set made of a number", '{"json":{"id":5},"meta":{"values":{"id":["set"]}}}'],
    ["a superjson class nobody registered", '{"json":{"id":"x"},"meta":{"values":{"id":[["class","Nope"]]}}}'],
    ["a superjson bigint that is not a number", '{"json":{"id":"x"},"meta":{"values":{"id":["bigint"]}}}'],
    ["malformed JSON", "{"],
  ])("says in its own words that it cannot read %s", async (_label, body) => {
    const response = await fetch(`${base}vm.start`, { method: "POST", body, headers: { "content-type": "application/json", authorization: bearer } });
    const { error } = (await response.json()) as { error: { json: { message: string; data: { code: string } } } };
    expect(error.json.data.code).toBe("BAD_REQUEST");
    // Not the library's own words ("Maximum call stack size exceeded", "number 5 is not iterable…").
    expect(error.json.message).toBe(UNREADABLE_INPUT);
  });

  it.each(requests)("answers %s without a 500 or a leak", async (_label, pathAndQuery, init) => {
    for (const authorization of [bearer, undefined]) {
      const response = await fetch(`${base}${pathAndQuery}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), ...(authorization ? { authorization } : {}) },
      });
      const body = await response.text();
      expect(response.status, body.slice(0, 500)).toBeLessThan(500);
      expect(leaks(body)).toEqual([]);
    }
  });
});
