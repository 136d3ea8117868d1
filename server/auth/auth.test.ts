// Accounts, roles, ownership, tokens, quotas and hosts, through the real router.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { TRPCError } from "@trpc/server";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appRouter, createCaller } from "../api/root.ts";
import { IN_PROCESS, type Meta } from "../api/trpc.ts";
import type { Hangar } from "../hangar.ts";
import { withCaller, withRequestId } from "../log.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { REPO_ROOT } from "../testing/paths.ts";
import { PERMISSIONS, type Principal } from "./permissions.ts";
import { authenticate } from "./principal.ts";
import { addUser, bootstrapAdmin } from "./users.ts";

let t: TestHangar;
let hangar: Hangar;
let fake: FakeDriver;
let imageId: string;

beforeEach(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  hangar = t.hangar;
  imageId = (await hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
});
afterEach(() => t.cleanup());

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error.code;
}

const spec = { cpus: 1, memoryMiB: 128 };

describe("every procedure declares its permission", () => {
  it("walks the router", () => {
    const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, { _def: { meta?: Meta } }>);
    expect(procedures.length).toBeGreaterThan(20);
    const missing = procedures.filter(([, p]) => !p._def.meta?.permission || !(p._def.meta.permission in PERMISSIONS)).map(([name]) => name);
    expect(missing).toEqual([]);
  });
});

describe("roles", () => {
  it("refuses everything but public procedures without a session or token", async () => {
    const anonymous = createCaller({ hangar, transport: IN_PROCESS, principal: null, actor: "anonymous" });
    expect(await refusal(anonymous.vm.list())).toBe("UNAUTHORIZED");
    expect(await anonymous.account.me()).toMatchObject({ user: null });
  });

  it("tells a viewer who owns a VM (made before a demotion) that viewers change none, rather than to ask its owner", async () => {
    const before = await callerFor(hangar, "operator", "demoted@test.hangar");
    const vm = await before.vm.create({ name: "kept-after-demotion", imageId, ...spec });
    const after = await callerFor(hangar, "viewer", "demoted@test.hangar");
    await expect(after.vm.start({ id: vm.id })).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "Viewers cannot change VMs, their own included; an admin can make you an operator.",
    });
    await before.vm.delete({ id: vm.id });
  });

  it("lets a viewer read but not start, create or see users", async () => {
    const admin = await callerFor(hangar, "admin");
    const vm = await admin.vm.create({ name: "v1", imageId, ...spec });
    const viewer = await callerFor(hangar, "viewer");
    expect((await viewer.vm.list()).items.map((v) => v.name)).toEqual(["v1"]);
    expect(await refusal(viewer.vm.start({ id: vm.id }))).toBe("FORBIDDEN");
    expect(await refusal(viewer.vm.create({ name: "v2", imageId, ...spec }))).toBe("FORBIDDEN");
    expect(await refusal(viewer.vm.resize({ id: vm.id, memoryMiB: 512 }))).toBe("FORBIDDEN");
    expect(await refusal(viewer.user.list())).toBe("FORBIDDEN");
    expect(await refusal(viewer.audit.list({}))).toBe("FORBIDDEN");
    expect(await refusal(viewer.audit.vmNames())).toBe("FORBIDDEN");
    expect(fake.vm(vm.id).calls).toEqual(["create"]);
  });

  it("keeps operator B off operator A's VM and tokens, procedure by procedure", async () => {
    const a = await callerFor(hangar, "operator", "a@test.hangar");
    const b = await callerFor(hangar, "operator", "b@test.hangar");
    const vm = await a.vm.create({ name: "owned-by-a", imageId, ...spec });
    const token = await a.token.create({ name: "ci" });
    const attempts: [string, Promise<unknown>][] = [
      ["vm.start", b.vm.start({ id: vm.id })],
      ["vm.stop", b.vm.stop({ id: vm.id })],
      ["vm.suspend", b.vm.suspend({ id: vm.id })],
      ["vm.delete", b.vm.delete({ id: vm.id })],
      ["vm.clone", b.vm.clone({ id: vm.id, name: "stolen" })],
      ["vm.resize", b.vm.resize({ id: vm.id, cpus: 4 })],
      ["vm.setAutostart", b.vm.setAutostart({ id: vm.id, autostart: true })],
      ["vm.rename", b.vm.rename({ id: vm.id, name: "taken-over" })],
      ["vm.publish", b.vm.publish({ id: vm.id, name: "stolen-image" })],
      ["vm.describe", b.vm.describe({ id: vm.id, description: "mine now" })],
      ["vm.setTags", b.vm.setTags({ id: vm.id, tags: ["stolen"] })],
      ["vm.restart", b.vm.restart({ id: vm.id })],
      ["vm.setProtection", b.vm.setProtection({ id: vm.id, protection: false })],
      ["vm.setOwner", b.vm.setOwner({ id: vm.id, ownerId: null })],
      ["snapshot.create", b.snapshot.create({ id: vm.id, name: "s1" })],
      ["snapshot.revert", b.snapshot.revert({ id: vm.id, name: "s1" })],
      ["snapshot.delete", b.snapshot.delete({ id: vm.id, name: "s1" })],
      ["pool.release", b.pool.release({ vmId: vm.id })],
      ["user.list", b.user.list()],
      ["audit.list", b.audit.list({})],
      ["audit.vmNames", b.audit.vmNames()],
    ];
    const codes = await Promise.all(attempts.map(async ([name, attempt]) => [name, await refusal(attempt)]));
    expect(codes).toEqual(attempts.map(([name]) => [name, "FORBIDDEN"]));
    expect(await refusal(b.token.revoke({ id: token.id }))).toBe("NOT_FOUND");
    expect(await b.token.list()).toEqual([]);
    expect(fake.vm(vm.id).calls).toEqual(["create"]);
    // A's own calls work, and an admin may act on A's VM.
    await a.vm.start({ id: vm.id });
    await (await callerFor(hangar, "admin")).vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("files a user's VM actions under them in the audit log, not the work those actions set going", async () => {
    const operator = await callerFor(hangar, "operator", "ana@test.hangar");
    const ana = await hangar.db.user.findUniqueOrThrow({ where: { email: "ana@test.hangar" } });
    const vm = await operator.vm.create({ name: "anas", imageId, ...spec });
    await operator.vm.start({ id: vm.id });
    await operator.vm.stop({ id: vm.id, timeoutSec: 0 });
    // A reconciler's event recorded while her call runs is not hers.
    await withRequestId("req", () =>
      withCaller({ actor: "ana@test.hangar", userId: ana.id }, () =>
        hangar.recorder.record({ stream: "vm", vm, actor: "reconciler", action: "reconcile", ok: true, message: "checked" }),
      ),
    );
    const admin = await callerFor(hangar, "admin");
    const hers = await admin.audit.list({ userId: ana.id, limit: 50 });
    expect(hers.events.map((e) => e.action).sort()).toEqual(["clone", "create", "start", "stop"]);
    expect(hers.events.every((e) => e.actor === "ana@test.hangar" && e.vmName === "anas")).toBe(true);
    const reconciled = await admin.audit.list({ vmId: vm.id, action: "reconcile", limit: 5 });
    expect(reconciled.events.map((e) => [e.actor, e.userId])).toEqual([["reconciler", null]]);
  });

  it("shows a viewer VM events but none of the audit log (sign-ins, users, tokens)", async () => {
    const admin = await callerFor(hangar, "admin");
    const vm = await admin.vm.create({ name: "watched", imageId, ...spec });
    await admin.user.add({ email: "new-op@test.hangar", name: "op", password: "a long password", role: "operator" });
    const token = await admin.token.create({ name: "secret-ci" });
    await hangar.recorder.record({
      stream: "audit",
      actor: "someone@test.hangar",
      action: "sign-in",
      ok: true,
      message: "someone signed in",
      target: "someone@test.hangar",
    });

    const viewer = await callerFor(hangar, "viewer");
    const everything = JSON.stringify(await viewer.vm.events({ limit: 200 }));
    const ofTheVm = await viewer.vm.events({ vmId: vm.id, limit: 200 });
    expect(ofTheVm.events.map((e) => e.action)).toEqual(["clone", "create"]);
    for (const secret of ["sign-in", "user-create", "token-create", "new-op@test.hangar", token.prefix, "secret-ci"]) {
      expect(everything).not.toContain(secret);
    }
    expect(everything).toContain("watched");
    // The admin's audit log has both streams, and each alone.
    const audit = await admin.audit.list({ stream: "audit", limit: 200 });
    expect(audit.events.map((e) => e.action).sort()).toEqual(["sign-in", "token-create", "user-create"]);
    expect((await admin.audit.list({ stream: "vm", limit: 200 })).events.every((e) => e.stream === "vm")).toBe(true);
  });

  it("finds a deleted VM's events by its name in the audit log", async () => {
    const admin = await callerFor(hangar, "admin");
    const gone = await admin.vm.create({ name: "gone-soon", imageId, ...spec });
    await admin.vm.create({ name: "stays", imageId, ...spec });
    await admin.vm.delete({ id: gone.id });
    expect(await admin.audit.vmNames()).toEqual(expect.arrayContaining(["gone-soon", "stays"]));
    const events = await admin.audit.list({ vmName: "gone-soon", limit: 200 });
    expect(events.events.map((e) => e.action)).toEqual(["delete", "clone", "create"]);
    expect(events.events.every((e) => e.vmName === "gone-soon")).toBe(true);
    expect(await refusal(admin.audit.list({ vmName: "Not A Name" }))).toBe("BAD_REQUEST");
  });

  it("enforces quotas on create with QUOTA_EXCEEDED", async () => {
    const op = await callerFor(hangar, "operator", "q@test.hangar");
    const user = await hangar.db.user.findUniqueOrThrow({ where: { email: "q@test.hangar" } });
    await (await callerFor(hangar, "admin")).user.update({ id: user.id, maxVms: 1, maxCpus: 2 });
    await op.vm.create({ name: "q1", imageId, ...spec });
    const error = await op.vm.create({ name: "q2", imageId, ...spec }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "FORBIDDEN", message: "Your quota is 1 VM and you have 1; delete one first." });
    // A name taken is the refusal that helps, quota or not.
    expect(await op.vm.create({ name: "q1", imageId, ...spec }).catch((e: unknown) => e)).toMatchObject({ code: "CONFLICT" });
    expect(await hangar.db.vm.count()).toBe(1);
    // An admin lowers a quota below what the operator has: the refusal counts what must go.
    await (await callerFor(hangar, "admin")).user.update({ id: user.id, maxVms: 2 });
    await op.vm.create({ name: "q2", imageId, ...spec });
    await (await callerFor(hangar, "admin")).user.update({ id: user.id, maxVms: 1 });
    const over = await op.vm.create({ name: "q3", imageId, ...spec }).catch((e: unknown) => e);
    expect(over).toMatchObject({ code: "FORBIDDEN", message: "Your quota is 1 VM and you have 2; delete 2 first." });
  });

  it("holds a resize to the owner's quota, and lets anyone give less", async () => {
    const op = await callerFor(hangar, "operator", "grow@test.hangar");
    const user = await hangar.db.user.findUniqueOrThrow({ where: { email: "grow@test.hangar" } });
    const admin = await callerFor(hangar, "admin");
    const small = await op.vm.create({ name: "grow-1", imageId, cpus: 1, memoryMiB: 128 });
    await op.vm.create({ name: "grow-2", imageId, cpus: 1, memoryMiB: 128 });
    await admin.user.update({ id: user.id, maxCpus: 3, maxMemoryMiB: 512 });
    expect(await op.vm.resize({ id: small.id, cpus: 2 })).toEqual({ cpus: 2, memoryMiB: 128 });
    expect(await op.vm.resize({ id: small.id, cpus: 3 }).catch((e: unknown) => e)).toMatchObject({
      code: "FORBIDDEN",
      message: "Your quota is 3 vCPUs; your other VMs use 1 and you asked for 3 for this one.",
    });
    expect(await admin.vm.resize({ id: small.id, memoryMiB: 1024 }).catch((e: unknown) => e)).toMatchObject({
      code: "FORBIDDEN",
      message: "The quota of grow@test.hangar is 512 MiB of memory; their other VMs use 128 MiB and this one would have 1024 MiB.",
    });
    // A quota lowered below what the VMs have already refuses growth, never a cut.
    await admin.user.update({ id: user.id, maxCpus: 1 });
    expect(await op.vm.resize({ id: small.id, cpus: 1 })).toEqual({ cpus: 1, memoryMiB: 128 });
    expect(await hangar.db.vm.findUniqueOrThrow({ where: { id: small.id } })).toMatchObject({ cpus: 1, memoryMiB: 128 });
  });
});

describe("giving a VM to another user", () => {
  it("moves control to the new owner within their quota, for admins only, and says so in the VM's events", async () => {
    const admin = await callerFor(hangar, "admin");
    const a = await callerFor(hangar, "operator", "leaving@test.hangar");
    const b = await callerFor(hangar, "operator", "staying@test.hangar");
    await callerFor(hangar, "viewer", "looking@test.hangar");
    const user = (email: string) => hangar.db.user.findUniqueOrThrow({ where: { email } });
    const [staying, looking] = [await user("staying@test.hangar"), await user("looking@test.hangar")];
    const vm = await a.vm.create({ name: "handed-over", imageId, cpus: 2, memoryMiB: 256 });
    expect(await refusal(a.vm.setOwner({ id: vm.id, ownerId: staying.id }))).toBe("FORBIDDEN");

    await admin.user.update({ id: staying.id, maxCpus: 2 });
    await b.vm.create({ name: "already", imageId, cpus: 1, memoryMiB: 128 });
    expect(await admin.vm.setOwner({ id: vm.id, ownerId: staying.id }).catch((e: unknown) => e)).toMatchObject({
      code: "FORBIDDEN",
      message: "The quota of staying@test.hangar is 2 vCPUs; they use 1 and this VM has 2.",
    });
    expect(await admin.vm.setOwner({ id: vm.id, ownerId: looking.id }).catch((e: unknown) => e)).toMatchObject({
      code: "BAD_REQUEST",
      message: "looking@test.hangar is a viewer, who cannot control VMs; make them an operator first.",
    });
    expect(await refusal(admin.vm.setOwner({ id: vm.id, ownerId: "no-such-user" }))).toBe("NOT_FOUND");

    await admin.user.update({ id: staying.id, maxCpus: 4 });
    expect(await admin.vm.setOwner({ id: vm.id, ownerId: staying.id })).toEqual({ ownerId: staying.id });
    expect(await refusal(a.vm.start({ id: vm.id }))).toBe("FORBIDDEN");
    await b.vm.start({ id: vm.id });
    expect((await b.vm.list({ owner: "mine", sort: "name", order: "asc" })).items.map((row) => [row.name, row.owner?.email])).toEqual([
      ["already", "staying@test.hangar"],
      ["handed-over", "staying@test.hangar"],
    ]);
    expect(await admin.vm.setOwner({ id: vm.id, ownerId: null })).toEqual({ ownerId: null });
    expect(await refusal(b.vm.stop({ id: vm.id, timeoutSec: 0 }))).toBe("FORBIDDEN");
    const events = await hangar.db.event.findMany({ where: { vmId: vm.id, action: "owner" }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
    expect(events.map((e) => [e.actor, e.message])).toEqual([
      ["admin@test.hangar", "Given to staying@test.hangar"],
      ["admin@test.hangar", "Owner removed: only admins control it"],
    ]);
  });
});

describe("a caller read again at each call (a long-lived connection)", () => {
  it("acts as the caller is now: refused once gone, with a viewer's rights once demoted", async () => {
    const admin = await callerFor(hangar, "admin", "long-lived@test.hangar");
    const user = await hangar.db.user.findUniqueOrThrow({ where: { email: "long-lived@test.hangar" } });
    const principal: Principal = { userId: user.id, email: user.email, role: "admin", via: "session" };
    let now: Principal | null = principal;
    const connection = createCaller({ hangar, transport: IN_PROCESS, principal, actor: user.email, recheck: async () => now });
    expect(Array.isArray(await connection.user.list())).toBe(true);
    now = { ...principal, role: "viewer" };
    expect(await refusal(connection.user.list())).toBe("FORBIDDEN");
    expect(await refusal(connection.user.update({ id: user.id, role: "admin" }))).toBe("FORBIDDEN");
    now = null;
    expect(await refusal(connection.vm.list())).toBe("UNAUTHORIZED");
    expect(await refusal(connection.token.create({ name: "minted" }))).toBe("UNAUTHORIZED");
    expect(await admin.token.list()).toEqual([]);
  });
});

describe("API tokens", () => {
  it("act with the owner's role, record their last use, and stop working once revoked", async () => {
    const op = await callerFor(hangar, "operator", "svc@test.hangar");
    const created = await op.token.create({ name: "deploy" });
    expect(created.token).toMatch(/^hgr_/);
    const principal = await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${created.token}` });
    expect(principal).toMatchObject({ email: "svc@test.hangar", role: "operator", via: "token", tokenName: "deploy" });
    // The scheme's name is case-insensitive (RFC 9110), as curl and requests users write it.
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `bearer ${created.token}` })).toMatchObject({ tokenName: "deploy" });
    const [listed] = await op.token.list();
    expect(listed?.lastUsedAt).not.toBeNull();
    expect(JSON.stringify(listed)).not.toContain(created.token);
    await op.token.revoke({ id: created.id });
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${created.token}` })).toBeNull();
    expect(await authenticate(hangar.db, hangar.auth, { authorization: "Bearer hgr_not-a-token" })).toBeNull();
  });

  it("made read-only, read with their owner's role and change nothing, not even tokens", async () => {
    const admin = await callerFor(hangar, "admin", "ro-admin@test.hangar");
    const { token } = await admin.token.create({ name: "grafana", readOnly: true });
    const principal = await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${token}` });
    expect(principal).toMatchObject({ role: "admin", via: "token", tokenName: "grafana", readOnly: true });
    const ro = createCaller({ hangar, principal, actor: "token grafana", transport: IN_PROCESS });
    expect(Array.isArray((await ro.vm.list()).items)).toBe(true);
    expect(Array.isArray(await ro.user.list())).toBe(true);
    const refused = [
      ro.vm.create({ name: "from-grafana", imageId: "img", cpus: 1, memoryMiB: 128 }),
      ro.token.create({ name: "escalate" }),
      ro.account.addSshKey({ publicKey: "ssh-ed25519 AAAA" }),
      ro.user.update({ id: principal?.userId ?? "", role: "admin" }),
      ro.terminal.ticket({ vmId: "vm1", kind: "console" }),
    ];
    for (const attempt of refused) {
      expect(
        await attempt.then(
          () => "done",
          (error: unknown) => (error instanceof TRPCError ? [error.code, error.message] : error),
        ),
      ).toEqual(["FORBIDDEN", 'Token grafana is read-only: it reads, and changes nothing. Use a token made without "Read only".']);
    }
    expect((await admin.token.list()).find((t) => t.name === "grafana")?.readOnly).toBe(true);
  });

  it("made with a token that expires, expire no later than it; a token changes no password", async () => {
    const op = await callerFor(hangar, "operator", "mint@test.hangar");
    const { token } = await op.token.create({ name: "ci", expiresInDays: 7 });
    const principal = await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${token}` });
    const ci = createCaller({ hangar, principal, actor: "token ci", transport: IN_PROCESS });
    const refusal = (attempt: Promise<unknown>) =>
      attempt.then(
        () => "done",
        (error: unknown) => (error instanceof TRPCError ? [error.code, error.message] : error),
      );
    for (const outliving of [{ name: "forever" }, { name: "longer", expiresInDays: 8 }]) {
      expect(await refusal(ci.token.create(outliving))).toEqual([
        "FORBIDDEN",
        expect.stringMatching(
          /^The token you call with expires on \d{4}-\d{2}-\d{2}, and a token it makes may not outlive it: set expiresInDays to 6 or less, or make the new token signed in, on the Account page\.$/,
        ),
      ]);
    }
    expect((await ci.token.create({ name: "shorter", expiresInDays: 6 })).expiresAt).not.toBeNull();
    // A token that does not expire makes any.
    const { token: forever } = await op.token.create({ name: "forever" });
    const long = createCaller({
      hangar,
      principal: await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${forever}` }),
      actor: "token forever",
      transport: IN_PROCESS,
    });
    expect((await long.token.create({ name: "also-forever" })).expiresAt).toBeNull();
    expect(await refusal(ci.account.changePassword({ currentPassword: "whatever it is", newPassword: "a new long password" }))).toEqual([
      "FORBIDDEN",
      "Change your password signed in, on the Account page; an API token cannot.",
    ]);
  });

  it("expire, and die with a disabled owner", async () => {
    const op = await callerFor(hangar, "operator", "exp@test.hangar");
    const created = await op.token.create({ name: "short", expiresInDays: 1 });
    await hangar.db.apiToken.update({ where: { id: created.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${created.token}` })).toBeNull();
    const other = await op.token.create({ name: "long" });
    const user = await hangar.db.user.findUniqueOrThrow({ where: { email: "exp@test.hangar" } });
    // A token checked a moment ago (its check is kept briefly) follows a change of its owner at once.
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${other.token}` })).toMatchObject({ role: "operator" });
    await (await callerFor(hangar, "admin")).user.update({ id: user.id, role: "viewer" });
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${other.token}` })).toMatchObject({ role: "viewer" });
    await (await callerFor(hangar, "admin")).user.update({ id: user.id, disabled: true });
    expect(await authenticate(hangar.db, hangar.auth, { authorization: `Bearer ${other.token}` })).toBeNull();
  });
});

describe("sessions (better-auth)", () => {
  it("signs in with email and password, refuses a wrong password and a disabled user", async () => {
    await addUser(hangar.db, hangar.auth, { email: "ana@test.hangar", name: "Ana", password: "correct horse", role: "operator" });
    const response = await hangar.auth.api.signInEmail({ body: { email: "ana@test.hangar", password: "correct horse" }, asResponse: true });
    expect(response.status).toBe(200);
    const cookie = response.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const principal = await authenticate(hangar.db, hangar.auth, { cookie: cookie.split(";")[0] ?? "" });
    expect(principal).toMatchObject({ email: "ana@test.hangar", role: "operator", via: "session" });
    expect(await hangar.db.event.count({ where: { action: "sign-in", target: "ana@test.hangar" } })).toBe(1);

    const wrong = await hangar.auth.api.signInEmail({ body: { email: "ana@test.hangar", password: "wrong horse" }, asResponse: true });
    expect(wrong.status).toBe(401);

    const ana = await hangar.db.user.findUniqueOrThrow({ where: { email: "ana@test.hangar" } });
    await (await callerFor(hangar, "admin")).user.update({ id: ana.id, disabled: true });
    expect(await authenticate(hangar.db, hangar.auth, { cookie: cookie.split(";")[0] ?? "" })).toBeNull();
    const disabled = await hangar.auth.api.signInEmail({ body: { email: "ana@test.hangar", password: "correct horse" }, asResponse: true });
    expect(disabled.status).toBe(403);
  });

  it("changes your own password once the current one matches, ending your other sessions; an admin sets a lost one", async () => {
    await addUser(hangar.db, hangar.auth, { email: "bo@test.hangar", name: "Bo", password: "first password", role: "operator" });
    const signIn = async (password: string) => {
      const response = await hangar.auth.api.signInEmail({ body: { email: "bo@test.hangar", password }, asResponse: true });
      return { status: response.status, cookie: (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "" };
    };
    const here = await signIn("first password");
    const elsewhere = await signIn("first password");
    const principal = await authenticate(hangar.db, hangar.auth, { cookie: here.cookie });
    if (!principal) throw new Error("no session");
    const bo = createCaller({ hangar, transport: IN_PROCESS, principal, actor: principal.email });

    await expect(bo.account.changePassword({ currentPassword: "not it", newPassword: "second password" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "The current password is not right; type it again.",
    });
    expect(await refusal(bo.account.changePassword({ currentPassword: "first password", newPassword: "short" }))).toBe("BAD_REQUEST");
    expect((await signIn("first password")).status).toBe(200);

    await bo.account.changePassword({ currentPassword: "first password", newPassword: "second password" });
    expect((await signIn("first password")).status).toBe(401);
    expect((await signIn("second password")).status).toBe(200);
    expect(await authenticate(hangar.db, hangar.auth, { cookie: here.cookie })).toMatchObject({ email: "bo@test.hangar" });
    expect(await authenticate(hangar.db, hangar.auth, { cookie: elsewhere.cookie })).toBeNull();
    expect(await hangar.db.event.count({ where: { action: "password-change", target: "bo@test.hangar" } })).toBe(1);

    for (let i = 0; i < 5; i++)
      expect(await refusal(bo.account.changePassword({ currentPassword: `guess ${i}`, newPassword: "guessed password" }))).toBe("BAD_REQUEST");
    await expect(bo.account.changePassword({ currentPassword: "second password", newPassword: "guessed password" })).rejects.toMatchObject({
      code: "TOO_MANY_REQUESTS",
      message: "The current password was wrong 5 times in a row; try again in 15 minutes.",
    });

    const id = principal.userId;
    expect(await refusal(bo.user.setPassword({ id, password: "third password" }))).toBe("FORBIDDEN");
    await (await callerFor(hangar, "admin")).user.setPassword({ id, password: "third password" });
    expect(await authenticate(hangar.db, hangar.auth, { cookie: here.cookie })).toBeNull();
    expect((await signIn("second password")).status).toBe(401);
    expect((await signIn("third password")).status).toBe(200);
    expect(await hangar.db.event.count({ where: { action: "user-password", target: "bo@test.hangar" } })).toBe(1);
  });

  it("creates the first admin only while no user exists, with the setup code", async () => {
    const anonymous = createCaller({ hangar, transport: IN_PROCESS, principal: null, actor: "anonymous" });
    expect((await anonymous.account.me()).needsFirstAdmin).toBe(true);
    const setupCode = (await bootstrapAdmin(hangar.db, hangar.auth, t.env.stateDir, undefined, undefined)) ?? "";
    expect(await refusal(anonymous.account.createFirstAdmin({ email: "root@test.hangar", name: "Root", password: "a long password" }))).toBe("FORBIDDEN");
    await anonymous.account.createFirstAdmin({ email: "root@test.hangar", name: "Root", password: "a long password", setupCode });
    expect((await anonymous.account.me()).needsFirstAdmin).toBe(false);
    expect(await refusal(anonymous.account.createFirstAdmin({ email: "x@test.hangar", name: "X", password: "a long password", setupCode }))).toBe(
      "BAD_REQUEST",
    );
    expect((await hangar.db.user.findUniqueOrThrow({ where: { email: "root@test.hangar" } })).role).toBe("admin");
  });

  it("writes what a user change changed in the audit log, and nothing for a save that changed nothing", async () => {
    const admin = await callerFor(hangar, "admin");
    const cy = await admin.user.add({ email: "cy@test.hangar", name: "Cy", password: "a long password", role: "viewer" });
    await admin.user.update({ id: cy.id, role: "operator", maxVms: 3, maxCpus: null, maxMemoryMiB: 2048 });
    await admin.user.update({ id: cy.id, maxVms: 3, maxCpus: null, maxMemoryMiB: 2048 });
    await admin.user.update({ id: cy.id, disabled: true });
    const messages = (await hangar.db.event.findMany({ where: { action: "user-update", target: "cy@test.hangar" } })).map((e) => e.message);
    expect(messages.sort()).toEqual([
      "Changed cy@test.hangar: disabled",
      "Changed cy@test.hangar: role viewer → operator, VM quota none → 3, memory quota none → 2048 MiB",
    ]);
  });

  it("never leaves Hangar without an enabled admin", async () => {
    const admin = await callerFor(hangar, "admin");
    const me = await hangar.db.user.findUniqueOrThrow({ where: { email: "admin@test.hangar" } });
    expect(await refusal(admin.user.update({ id: me.id, role: "viewer" }))).toBe("BAD_REQUEST");
    expect(await refusal(admin.user.remove({ id: me.id }))).toBe("BAD_REQUEST");
  });
});

describe("hosts", () => {
  it("holds the compare-and-set across two Hangar processes on one database: 20 starts, one transition", async () => {
    const admin = await callerFor(hangar, "admin");
    const vm = await admin.vm.create({ name: "contended", imageId, ...spec });
    const go = path.join(t.env.stateDir, "go");
    // The other process: its own connection, its own fake driver, the same database.
    const second = execa("npx", ["tsx", path.join(REPO_ROOT, "server", "testing", "contend.ts"), t.env.databaseUrl, vm.id, "10", go, t.env.stateDir], {
      cwd: REPO_ROOT,
    });
    await new Promise<void>((resolve) => second.stdout?.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve()));
    fake.startDelayMs = 30;
    writeFileSync(go, "");
    const ours = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => hangar.lifecycle.startVm(vm.id, `first-${i}`)));
    const theirs = JSON.parse((await second).stdout.split("\n").pop() ?? "{}") as { won: number };
    expect(ours.filter((r) => r.status === "fulfilled").length + theirs.won).toBe(1);
    expect(await hangar.db.event.count({ where: { vmId: vm.id, action: "start" } })).toBe(1);
    expect((await hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Running");
  });
});
