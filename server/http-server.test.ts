// Hangar's HTTP server over real HTTP: the Host check on every path, request targets and
// the methods pages answer, the setup code, the cross-site check of mutations, body and
// batch limits, security headers and Secure cookies. Pages are a stand-in for Next (which
// the e2e specs run); everything else is the real handler.
import { statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import superjson from "superjson";
import { afterEach, describe, expect, it } from "vitest";
import { createHangarClient } from "../client/index.ts";
import { LIST_SEED_HEADER, MAX_BATCH_CALLS, SESSION_SEED_HEADER } from "../lib/vocabulary.ts";
import { bootstrapAdmin, addUser, SETUP_CODE_REFUSAL } from "./auth/users.ts";
import { SETUP_CODE_FILE } from "./auth/setup-code.ts";
import { createToken } from "./auth/tokens.ts";
import type { Settings } from "./env.ts";
import { BAD_TARGET_MESSAGE, NO_AUTH_ENDPOINT_MESSAGE, PAGE_METHOD_MESSAGE, WRONG_HOST_MESSAGE, createHttpServer } from "./http-server.ts";
import { FakeDriver } from "./testing/fake-driver.ts";
import { createVm } from "./vms/inventory.ts";
import { createTestHangar, type TestHangar } from "./testing/fixtures.ts";

interface Served {
  t: TestHangar;
  port: number;
  /** Host header values that name this server. */
  host: string;
  origin: string;
  /** The policy Next would have read from each page request. */
  pageRequests: (string | undefined)[];
  /** The session seed Next would have read from each page request (app/layout.tsx). */
  pageSeeds: (string | undefined)[];
  /** The same for the inventory's first list. */
  listSeeds: (string | undefined)[];
  server: http.Server;
}

const running: { server: http.Server; t: TestHangar }[] = [];

afterEach(async () => {
  for (const { server, t } of running.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    t.hangar.terminals.close();
    await t.cleanup();
  }
});

/** The real request handler on port 0, with settings that may name the port it got. */
async function serve(settings: (port: number) => Partial<Settings> = () => ({})): Promise<Served> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const t = await createTestHangar({ driverFor: new FakeDriver().managerFor, settings: { PORT: port, ...settings(port) } });
  running.push({ server, t });
  const pageRequests: (string | undefined)[] = [];
  const pageSeeds: (string | undefined)[] = [];
  const listSeeds: (string | undefined)[] = [];
  createHttpServer(
    {
      hangar: t.hangar,
      dev: false,
      pages: {
        handle: async (req, res) => {
          pageRequests.push(req.headers["content-security-policy"] as string | undefined);
          pageSeeds.push(req.headers[SESSION_SEED_HEADER] as string | undefined);
          listSeeds.push(req.headers[LIST_SEED_HEADER] as string | undefined);
          res.writeHead(200, { "Content-Type": "text/html" }).end("<!doctype html><title>page</title>");
        },
        handleUpgrade: async (_req, socket) => {
          socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        },
      },
    },
    server,
  );
  return { t, port, host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, pageRequests, pageSeeds, listSeeds, server };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(port: number, method: string, urlPath: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path: urlPath, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The status of a WebSocket upgrade (101 when it was accepted). */
function upgradeStatus(port: number, urlPath: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: urlPath,
      headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...headers },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

/** A tRPC mutation over HTTP: its status, and the tRPC error code and message if refused. */
async function mutate(port: number, procedure: string, input: unknown, headers: Record<string, string>) {
  const reply = await send(port, "POST", `/api/trpc/${procedure}`, headers, JSON.stringify({ json: input }));
  const parsed = JSON.parse(reply.body) as { error?: { json?: { message?: string; data?: { code?: string } } }; result?: { data?: { json?: unknown } } };
  return {
    status: reply.status,
    code: parsed.error?.json?.data?.code,
    message: parsed.error?.json?.message,
    data: parsed.result?.data?.json,
    headers: reply.headers,
  };
}

async function signIn(served: Served, email: string, password: string, headers: Record<string, string> = { host: served.host, origin: served.origin }) {
  const reply = await send(served.port, "POST", "/api/auth/sign-in/email", headers, JSON.stringify({ email, password }));
  expect(reply.status, reply.body).toBe(200);
  const cookies = reply.headers["set-cookie"] ?? [];
  return { cookies, cookie: cookies.map((c) => c.split(";")[0]).join("; ") };
}

describe("Host check", () => {
  it("refuses a forged Host with 421 on a page, the API, sign-in and a WebSocket upgrade, before anything runs", async () => {
    const served = await serve();
    const forged = { host: `evil.example:${served.port}`, origin: `http://evil.example:${served.port}` };
    for (const [method, urlPath] of [
      ["GET", "/"],
      ["GET", "/setup"],
      ["GET", "/api/trpc/account.me"],
      ["POST", "/api/auth/sign-in/email"],
    ] as const) {
      const reply = await send(served.port, method, urlPath, forged, method === "POST" ? "{}" : undefined);
      expect(reply.status, `${method} ${urlPath}`).toBe(421);
      expect(reply.body).toBe(WRONG_HOST_MESSAGE);
    }
    expect(served.pageRequests).toEqual([]);
    expect(await upgradeStatus(served.port, "/ws/terminal?ticket=x&vm=y&kind=console", forged)).toBe(421);

    // Its own names answer.
    for (const host of [served.host, `localhost:${served.port}`, `[::1]:${served.port}`]) {
      expect((await send(served.port, "GET", "/", { host })).status, host).toBe(200);
    }
    expect((await send(served.port, "GET", "/api/trpc/account.me", { host: served.host })).status).toBe(200);
    // The terminal bridge itself answers (and refuses a made-up ticket).
    expect(await upgradeStatus(served.port, "/ws/terminal?ticket=x&vm=y&kind=console", { host: served.host, origin: served.origin })).toBe(403);
  });

  it("answers only to HANGAR_PUBLIC_ORIGIN when it is set", async () => {
    const served = await serve(() => ({ HANGAR_PUBLIC_ORIGIN: ["https://hangar.test"] }));
    expect((await send(served.port, "GET", "/", { host: "hangar.test" })).status).toBe(200);
    expect((await send(served.port, "GET", "/", { host: "hangar.test:443" })).status).toBe(200);
    expect((await send(served.port, "GET", "/", { host: served.host })).status).toBe(421);
  });

  it("takes a full URL as the request target for its host, and refuses with 400 a target that is no path or not UTF-8", async () => {
    const served = await serve();
    // Absolute form (what a proxy sends): its authority is the host the check reads, not the header's.
    const throughProxy = await send(served.port, "GET", `http://evil.example:${served.port}/`, { host: served.host });
    expect([throughProxy.status, throughProxy.body]).toEqual([421, WRONG_HOST_MESSAGE]);
    const own = await send(served.port, "GET", `${served.origin}/api/trpc/account.me`, { host: `evil.example:${served.port}` });
    expect([own.status, JSON.parse(own.body)]).toEqual([200, { result: { data: { json: { user: null, needsFirstAdmin: true } } } }]);
    for (const target of ["*", "ftp://127.0.0.1/", "/vms/%ff%fe", "/api/v1/vms/%E0%A4%A"]) {
      const reply = await send(served.port, "GET", target, { host: served.host });
      expect([reply.status, reply.body], target).toEqual([400, BAD_TARGET_MESSAGE]);
      expect(await upgradeStatus(served.port, target, { host: served.host, origin: served.origin }), target).toBe(400);
    }
    expect(served.pageRequests).toEqual([]);
  });

  it("answers pages to GET and HEAD only", async () => {
    const served = await serve();
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "TRACE"]) {
      const reply = await send(served.port, method, "/vms/abc", { host: served.host });
      expect([reply.status, reply.headers.allow, reply.body], method).toEqual([405, "GET, HEAD", PAGE_METHOD_MESSAGE]);
    }
    expect(served.pageRequests).toEqual([]);
    expect((await send(served.port, "HEAD", "/vms/abc", { host: served.host })).status).toBe(200);
    expect((await send(served.port, "GET", "/vms/abc", { host: served.host })).status).toBe(200);
  });
});

describe("first admin", () => {
  it("needs the setup code from the log and the state directory, and takes it only once", async () => {
    const served = await serve();
    const { t } = served;
    const code = await bootstrapAdmin(t.hangar.db, t.hangar.auth, t.env.stateDir, undefined, undefined);
    if (!code) throw new Error("no setup code was issued on a fresh install");
    const file = path.join(t.env.stateDir, SETUP_CODE_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const admin = { email: "root@test.hangar", name: "Root", password: "a long password" };
    const own = { host: served.host, origin: served.origin };

    // A DNS-rebinding page: its Host and Origin agree, and even the right code does not help.
    const rebinding = await send(
      served.port,
      "POST",
      "/api/trpc/account.createFirstAdmin",
      { host: `evil.example:${served.port}`, origin: `http://evil.example:${served.port}` },
      JSON.stringify({ json: { ...admin, setupCode: code } }),
    );
    expect(rebinding.status).toBe(421);

    for (const setupCode of [undefined, "", "0".repeat(code.length), `${code}x`]) {
      const refused = await mutate(served.port, "account.createFirstAdmin", { ...admin, setupCode }, own);
      expect(refused, `setup code ${String(setupCode)}`).toMatchObject({ status: 403, code: "FORBIDDEN", message: SETUP_CODE_REFUSAL });
    }
    expect(await t.hangar.db.user.count()).toBe(0);

    const created = await mutate(served.port, "account.createFirstAdmin", { ...admin, setupCode: code }, own);
    expect(created).toMatchObject({ status: 200, data: { email: admin.email, role: "admin" } });
    expect(() => statSync(file)).toThrow();
    const again = await mutate(served.port, "account.createFirstAdmin", { ...admin, email: "second@test.hangar", setupCode: code }, own);
    expect(again).toMatchObject({ status: 400, code: "BAD_REQUEST" });
    expect(await t.hangar.db.user.count()).toBe(1);
    // Once an admin exists, a restart issues no code.
    expect(await bootstrapAdmin(t.hangar.db, t.hangar.auth, t.env.stateDir, undefined, undefined)).toBeNull();
  });

  it("is created from HANGAR_ADMIN_EMAIL and _PASSWORD without a code, and no code is left behind", async () => {
    const served = await serve();
    const { t } = served;
    await bootstrapAdmin(t.hangar.db, t.hangar.auth, t.env.stateDir, undefined, undefined);
    expect(await bootstrapAdmin(t.hangar.db, t.hangar.auth, t.env.stateDir, "boot@test.hangar", "a long password")).toBeNull();
    expect((await t.hangar.db.user.findUniqueOrThrow({ where: { email: "boot@test.hangar" } })).role).toBe("admin");
    expect(() => statSync(path.join(t.env.stateDir, SETUP_CODE_FILE))).toThrow();
  });
});

describe("the page's session seed", () => {
  it("tells a page a browser opens who is signed in, as account.me would, and drops the header a client sent", async () => {
    const served = await serve();
    await addUser(served.t.hangar.db, served.t.hangar.auth, { email: "seen@test.hangar", name: "Seen", password: "a long password", role: "operator" });
    const { cookie } = await signIn(served, "seen@test.hangar", "a long password");
    const forged = encodeURIComponent(superjson.stringify({ user: { email: "boss@test.hangar", role: "admin" }, needsFirstAdmin: false }));
    const open = (urlPath: string, headers: Record<string, string>) => send(served.port, "GET", urlPath, { host: served.host, ...headers });
    await open("/", { cookie, "sec-fetch-dest": "document" });
    await open("/", { "sec-fetch-dest": "document", [SESSION_SEED_HEADER]: forged });
    await open("/_next/static/chunks/app.js", { cookie, "sec-fetch-dest": "script", [SESSION_SEED_HEADER]: forged });
    await open("/pools?_rsc=1", { cookie, [SESSION_SEED_HEADER]: forged });
    const [signedIn, anonymous, script, payload] = served.pageSeeds.map((seed) => (seed === undefined ? undefined : superjson.parse(decodeURIComponent(seed))));
    expect(signedIn).toMatchObject({ user: { email: "seen@test.hangar", role: "operator" }, needsFirstAdmin: false });
    expect(anonymous).toEqual({ user: null, needsFirstAdmin: false });
    expect([script, payload]).toEqual([undefined, undefined]);
  });

  it("gives the inventory page the first page of the list its table starts on, read as the caller, and nothing else does", async () => {
    const served = await serve();
    const { hangar } = served.t;
    const operator = await addUser(hangar.db, hangar.auth, { email: "ops@test.hangar", name: "Ops", password: "a long password", role: "operator" });
    const other = await addUser(hangar.db, hangar.auth, { email: "other@test.hangar", name: "Other", password: "a long password", role: "operator" });
    const image = await hangar.db.image.create({ data: { name: "base", path: "/images/base.qcow2", status: "ready" } });
    for (const [name, owner] of [
      ["hers-1", operator.id],
      ["theirs", other.id],
      ["hers-2", operator.id],
    ] as const) {
      await createVm(hangar, { name, imageId: image.id, cpus: 1, memoryMiB: 128 }, "tester", owner);
    }
    const { cookie } = await signIn(served, "ops@test.hangar", "a long password");
    const forged = encodeURIComponent(superjson.stringify({ items: [], nextCursor: null, total: 0 }));
    const open = (urlPath: string, headers: Record<string, string>) => send(served.port, "GET", urlPath, { host: served.host, ...headers });
    const opened = Date.now();
    await open("/?q=1", { cookie, "sec-fetch-dest": "document", [LIST_SEED_HEADER]: forged });
    await open("/pools", { cookie, "sec-fetch-dest": "document", [LIST_SEED_HEADER]: forged });
    await open("/", { "sec-fetch-dest": "document", [LIST_SEED_HEADER]: forged });
    const [inventory, pools, anonymous] = served.listSeeds.map((seed) =>
      seed === undefined
        ? undefined
        : superjson.parse<{ resumeFrom: string; readAt: number; page: { items: { name: string }[]; total: number } }>(decodeURIComponent(seed)),
    );
    // An operator's table starts on their own VMs, newest first; the tab's live stream starts
    // from a time mark taken before the read (vm.onChange sends what changed since).
    expect(inventory?.page.items.map((vm) => vm.name)).toEqual(["hers-2", "hers-1"]);
    expect(inventory?.page.total).toBe(2);
    const mark = Number(/^live(\d+)$/.exec(inventory?.resumeFrom ?? "")?.[1]);
    expect(mark).toBeGreaterThanOrEqual(opened);
    expect(mark).toBeLessThanOrEqual(Date.now());
    // The page's ages count to the same moment on the server and in the tab's first render.
    expect(inventory?.readAt).toBe(mark);
    expect([pools, anonymous]).toEqual([undefined, undefined]);
  });
});

describe("cross-site mutations", () => {
  it("refuse the admin's cookie from another origin; own origin, same-origin fetches and Bearer tokens work", async () => {
    const served = await serve();
    const { t } = served;
    await addUser(t.hangar.db, t.hangar.auth, { email: "admin@test.hangar", name: "Admin", password: "a long password", role: "admin" });
    const { cookie } = await signIn(served, "admin@test.hangar", "a long password");
    const asAdmin = (headers: Record<string, string>) => ({ host: served.host, cookie, ...headers });

    const foreign = await mutate(served.port, "token.create", { name: "stolen" }, asAdmin({ origin: "http://evil.example" }));
    expect(foreign).toMatchObject({ status: 403, code: "FORBIDDEN" });
    expect(foreign.message).toMatch(/another site/);
    const crossSite: Record<string, string>[] = [
      {},
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "null" },
      { origin: `https://127.0.0.1:${served.port}` },
    ];
    for (const headers of crossSite) {
      expect(await mutate(served.port, "token.create", { name: "stolen" }, asAdmin(headers)), JSON.stringify(headers)).toMatchObject({
        status: 403,
        code: "FORBIDDEN",
      });
    }
    expect(await t.hangar.db.apiToken.count()).toBe(0);
    // Reads are not mutations: a page elsewhere cannot read the answer anyway.
    expect((await send(served.port, "GET", "/api/trpc/token.list", asAdmin({ origin: "http://evil.example" }))).status).toBe(200);

    const own = await mutate(served.port, "token.create", { name: "own" }, asAdmin({ origin: served.origin }));
    expect(own.status).toBe(200);
    const sameOrigin = await mutate(served.port, "token.create", { name: "fetch" }, asAdmin({ "sec-fetch-site": "same-origin" }));
    expect(sameOrigin.status).toBe(200);
    const token = (own.data as { token: string }).token;
    const bearer = await mutate(
      served.port,
      "token.create",
      { name: "service" },
      { host: served.host, authorization: `Bearer ${token}`, origin: "http://evil.example" },
    );
    expect(bearer.status).toBe(200);
    expect(await t.hangar.db.apiToken.count()).toBe(3);
  });

  it("cannot go around Hangar's rules through better-auth's other endpoints: only sign-in and sign-out are served", async () => {
    const served = await serve();
    const { t } = served;
    await addUser(t.hangar.db, t.hangar.auth, { email: "ops@test.hangar", name: "Ops", password: "a long password", role: "operator" });
    const { cookie } = await signIn(served, "ops@test.hangar", "a long password");
    const headers = { host: served.host, origin: served.origin, cookie };
    const hidden = [
      ["GET", "/api/auth/list-sessions", ""],
      ["POST", "/api/auth/change-password", JSON.stringify({ currentPassword: "a long password", newPassword: "another long one" })],
      ["POST", "/api/auth/revoke-other-sessions", "{}"],
      ["POST", "/api/auth/update-user", JSON.stringify({ name: "Renamed" })],
      ["GET", "/api/auth/get-session", ""],
    ] as const;
    for (const [method, url, body] of hidden) {
      const reply = await send(served.port, method, url, headers, body || undefined);
      expect(reply.status, url).toBe(404);
      expect(JSON.parse(reply.body)).toEqual({ message: NO_AUTH_ENDPOINT_MESSAGE });
    }
    expect((await t.hangar.db.user.findUniqueOrThrow({ where: { email: "ops@test.hangar" } })).name).toBe("Ops");
    await signIn(served, "ops@test.hangar", "a long password");
    expect((await send(served.port, "POST", "/api/auth/sign-out", headers, "{}")).status).toBe(200);
  });

  it("allow an origin listed in HANGAR_ALLOWED_ORIGINS", async () => {
    const served = await serve(() => ({ HANGAR_ALLOWED_ORIGINS: ["https://ci.example.com"] }));
    await addUser(served.t.hangar.db, served.t.hangar.auth, { email: "admin@test.hangar", name: "Admin", password: "a long password", role: "admin" });
    const { cookie } = await signIn(served, "admin@test.hangar", "a long password");
    expect((await mutate(served.port, "token.create", { name: "ci" }, { host: served.host, cookie, origin: "https://ci.example.com" })).status).toBe(200);
  });
});

/** A POST whose body never ends: chunked unless `headers` declare a Content-Length; `bytes` of it are sent. */
function postUnfinished(port: number, urlPath: string, headers: Record<string, string>, bytes: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: urlPath, headers: { "content-type": "application/json", ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
    });
    // The server ends the connection after its reply while this side still has body to send.
    req.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" || error.code === "EPIPE" ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < bytes && req.write(chunk)) sent += chunk.length;
    };
    req.on("drain", pump);
    pump();
  });
}

describe("request bodies", () => {
  it("over 1 MiB get 413 and a sentence on /api/trpc and /api/v1, before sign-in and without the server reading them", async () => {
    const served = await serve();
    let serverRead = 0;
    served.server.on("connection", (socket) => socket.on("close", () => (serverRead = Math.max(serverRead, socket.bytesRead))));
    const sentence = /^The request body is over 1 MiB/;
    // Declared too large: refused before a byte of it is read.
    for (const urlPath of ["/api/trpc/vm.describe", "/api/v1/vms"]) {
      const reply = await postUnfinished(served.port, urlPath, { host: served.host, "content-length": String(150 * 1024 * 1024) }, 64 * 1024);
      expect(reply.status, urlPath).toBe(413);
      expect(reply.headers.connection).toBe("close");
      const message = urlPath.startsWith("/api/trpc")
        ? (JSON.parse(reply.body) as { error: { json: { message: string } } }).error.json.message
        : (JSON.parse(reply.body) as { message: string }).message;
      expect(message).toMatch(sentence);
    }
    // A sign-in is small and says its length: better-auth would read any body whole.
    const signIn = await postUnfinished(
      served.port,
      "/api/auth/sign-in/email",
      { host: served.host, origin: served.origin, "content-length": String(150 * 1024 * 1024) },
      64 * 1024,
    );
    expect([signIn.status, JSON.parse(signIn.body)]).toEqual([413, { message: "The request body is larger than a sign-in needs." }]);
    const chunkedSignIn = await postUnfinished(served.port, "/api/auth/sign-in/email", { host: served.host, origin: served.origin }, 1024 * 1024);
    expect(chunkedSignIn.status).toBe(411);
    // Chunked: reading stops at the limit, though 16 MiB more are on their way.
    for (const urlPath of ["/api/trpc/vm.describe", "/api/v1/vms"]) {
      const reply = await postUnfinished(served.port, urlPath, { host: served.host }, 16 * 1024 * 1024);
      expect(reply.status, urlPath).toBe(413);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(serverRead).toBeLessThan(4 * 1024 * 1024);
  });
});

describe("batches", () => {
  it("carry at most MAX_BATCH_CALLS calls, and hangar/client splits a longer one to fit", async () => {
    const served = await serve();
    const calls = (n: number) => `/api/trpc/${Array(n).fill("account.me").join(",")}?batch=1`;
    const full = await send(served.port, "GET", calls(MAX_BATCH_CALLS), { host: served.host });
    expect([full.status, (JSON.parse(full.body) as unknown[]).length]).toEqual([200, MAX_BATCH_CALLS]);
    const over = await send(served.port, "GET", calls(MAX_BATCH_CALLS + 1), { host: served.host });
    expect(over.status).toBe(400);
    // tRPC answers a batch's failure once for each of its calls.
    const messages = (JSON.parse(over.body) as { error: { json: { message: string } } }[]).map((reply) => reply.error.json.message);
    expect(new Set(messages)).toEqual(
      new Set([`A batch carries at most ${MAX_BATCH_CALLS} calls (this one has ${MAX_BATCH_CALLS + 1}); send the rest in another request.`]),
    );
    const user = await addUser(served.t.hangar.db, served.t.hangar.auth, {
      email: "ops@test.hangar",
      name: "Ops",
      password: "a long password",
      role: "operator",
    });
    const { token } = await createToken(served.t.hangar.db, user.id, { name: "script" });
    const client = createHangarClient({ url: served.origin, token });
    const answers = await Promise.all(Array.from({ length: 3 * MAX_BATCH_CALLS + 1 }, () => client.account.me.query()));
    expect(new Set(answers.map((me) => me.user?.email))).toEqual(new Set(["ops@test.hangar"]));
  });
});

describe("security headers", () => {
  it("are on pages (with a fresh nonce Next reads from the request) and on API responses", async () => {
    const served = await serve();
    const first = await send(served.port, "GET", "/", { host: served.host });
    const second = await send(served.port, "GET", "/vms/abc", { host: served.host });
    const api = await send(served.port, "GET", "/api/trpc/account.me", { host: served.host });
    const refused = await send(served.port, "GET", "/", { host: "evil.example" });
    for (const reply of [first, second, api, refused]) {
      expect(reply.headers).toMatchObject({ "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin" });
      const policy = reply.headers["content-security-policy"] ?? "";
      for (const directive of [
        "default-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "connect-src 'self'",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
      ]) {
        expect(policy).toContain(directive);
      }
      expect(policy).not.toContain("unsafe-eval");
    }
    const nonce = (policy: string | string[] | undefined) => /script-src 'self' 'nonce-([A-Za-z0-9+/=]+)'/.exec(String(policy))?.[1];
    expect(nonce(first.headers["content-security-policy"])).toBeDefined();
    expect(nonce(first.headers["content-security-policy"])).not.toBe(nonce(second.headers["content-security-policy"]));
    expect(served.pageRequests).toEqual([first.headers["content-security-policy"], second.headers["content-security-policy"]]);
    expect(api.headers["content-security-policy"]).toContain("script-src 'self';");
  });
});

describe("cookies", () => {
  it("are Secure when the public origin is https, and not on plain http", async () => {
    const secure = await serve(() => ({ HANGAR_PUBLIC_ORIGIN: ["https://hangar.test"] }));
    await addUser(secure.t.hangar.db, secure.t.hangar.auth, { email: "ana@test.hangar", name: "Ana", password: "a long password", role: "operator" });
    const signedIn = await signIn(secure, "ana@test.hangar", "a long password", { host: "hangar.test", origin: "https://hangar.test" });
    const session = signedIn.cookies.find((c) => c.includes("session_token"));
    expect(session).toMatch(/^__Secure-/);
    expect(session).toMatch(/;\s*Secure/i);
    expect(session).toMatch(/HttpOnly/i);
    // The session works on the next request.
    const me = await send(secure.port, "GET", "/api/trpc/account.me", { host: "hangar.test", cookie: signedIn.cookie });
    expect(me.body).toContain("ana@test.hangar");

    const plain = await serve();
    await addUser(plain.t.hangar.db, plain.t.hangar.auth, { email: "ana@test.hangar", name: "Ana", password: "a long password", role: "operator" });
    const plainCookies = (await signIn(plain, "ana@test.hangar", "a long password")).cookies;
    expect(plainCookies.find((c) => c.includes("session_token"))).not.toMatch(/;\s*Secure/i);
  });
});
