// The REST surface and its OpenAPI document: the document has the shape OpenAPI 3 requires
// and names every procedure that has a route, and the procedures answer over real HTTP with
// an API token, with the errorFormatter's messages and the HTTP status of their code.
import { generateKeyPairSync, createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { TRPCError, type AnyProcedure } from "@trpc/server";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createHttpServer, WRONG_HOST_MESSAGE } from "../http-server.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { openApiDocument } from "./openapi.ts";
import { appRouter } from "./root.ts";
import type { Meta } from "./trpc.ts";

/** What OpenAPI 3.x requires of the parts Hangar's document has (a subset of the spec's schema). */
const response = z.object({
  description: z.string().min(1),
  content: z.record(z.string(), z.object({ schema: z.record(z.string(), z.unknown()) })).optional(),
});
const operation = z.object({
  operationId: z.string().min(1),
  summary: z.string().optional(),
  tags: z.array(z.string()).optional(),
  security: z.array(z.record(z.string(), z.array(z.string()))).optional(),
  parameters: z
    .array(z.object({ in: z.enum(["path", "query", "header", "cookie"]), name: z.string(), required: z.boolean().optional(), schema: z.unknown() }))
    .optional(),
  requestBody: z.object({ content: z.record(z.string(), z.object({ schema: z.unknown() })), required: z.boolean().optional() }).optional(),
  responses: z
    .record(z.string().regex(/^([1-5]\d\d|default)$/), response)
    .refine((responses) => Object.keys(responses).length > 0, "an operation needs responses"),
});
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const pathItem = z.partialRecord(z.enum(METHODS), operation).refine((item) => Object.keys(item).length > 0, "a path needs at least one operation");
const openApi = z.object({
  openapi: z.string().regex(/^3\.\d+\.\d+$/),
  info: z.object({ title: z.string().min(1), version: z.string().min(1) }),
  servers: z.array(z.object({ url: z.url() })).min(1),
  paths: z.record(z.string().startsWith("/"), pathItem),
  components: z.object({
    securitySchemes: z.record(z.string(), z.object({ type: z.string(), scheme: z.string().optional() })),
    schemas: z.record(z.string(), z.unknown()).optional(),
  }),
});

/** Each procedure's type and meta (tRPC types the flat procedure map by its nested routers). */
function procedureDefs(): { type: string; meta: Meta | undefined }[] {
  const flat = appRouter._def.procedures as unknown as Record<string, AnyProcedure>;
  return Object.values(flat).map((procedure) => ({ type: procedure._def.type, meta: procedure._def.meta as Meta | undefined }));
}

/** Every procedure that declares a REST route, as "METHOD /path". */
function declaredRoutes(): string[] {
  return procedureDefs().flatMap(({ meta }) => (meta?.openapi ? [`${meta.openapi.method} ${meta.openapi.path}`] : []));
}

describe("the OpenAPI document", () => {
  const document = openApi.parse(openApiDocument("https://hangar.example"));

  it("is OpenAPI 3 with a Bearer scheme that every operation requires", () => {
    expect(document.servers[0]?.url).toBe("https://hangar.example/api/v1");
    expect(document.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
    for (const [route, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item)) {
        expect(op?.security, `${method} ${route}`).toEqual([{ bearer: [] }]);
        expect(Object.keys(op?.responses ?? {}), `${method} ${route}`).toEqual(expect.arrayContaining(["200", "401", "403"]));
      }
    }
  });

  it("has an operation for each procedure with a route: queries GET, mutations POST, no subscriptions", () => {
    const documented = Object.entries(document.paths).flatMap(([route, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`));
    expect(documented.sort()).toEqual(declaredRoutes().sort());
    for (const { type, meta } of procedureDefs()) {
      if (!meta?.openapi) continue;
      expect(type).not.toBe("subscription");
      expect(meta.openapi.method).toBe(type === "query" ? "GET" : "POST");
    }
    expect(declaredRoutes()).toEqual(expect.arrayContaining(["GET /vms", "GET /vms/{id}", "POST /vms", "POST /vms/{id}/start"]));
  });

  it("describes Hangar's error body (with data.domainCode) and every status a route answers with", () => {
    const schemas = document.components.schemas ?? {};
    expect(Object.keys(schemas).filter((name) => name.startsWith("error."))).toEqual([]);
    const error = z
      .object({
        required: z.array(z.string()),
        properties: z.object({ data: z.object({ properties: z.object({ domainCode: z.object({ enum: z.array(z.string().nullable()) }) }) }) }),
      })
      .parse(schemas.Error);
    expect(error.required).toEqual(["message", "code", "data"]);
    expect(error.properties.data.properties.domainCode.enum).toEqual(expect.arrayContaining(["VM_INVALID_TRANSITION", "QUOTA_EXCEEDED", null]));
    const statuses = (route: string, method: "get" | "post") => Object.keys(document.paths[route]?.[method]?.responses ?? {});
    expect(statuses("/vms/{id}/start", "post")).toEqual(["200", "400", "401", "403", "404", "408", "409", "412", "413", "415", "500"]);
    expect(statuses("/vms/{id}", "get")).toEqual(expect.arrayContaining(["404", "412"]));
    for (const [route, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, answer] of Object.entries(op?.responses ?? {})) {
          if (status === "200" || status === "304") continue;
          expect(JSON.stringify(answer.content), `${method} ${route} ${status}`).toContain("#/components/schemas/Error");
        }
      }
    }
  });

  it("declares the values of network, readyState and actions, dates as date-time, and names its result objects", () => {
    const row = z.object({ properties: z.record(z.string(), z.unknown()) }).parse(document.components.schemas?.VmRow).properties;
    expect(row.network).toMatchObject({ enum: ["nat", "isolated", "bridge"] });
    expect(JSON.stringify(row.readyState)).toContain('"enum":["booting","ready","error"]');
    expect(row.actions).toMatchObject({ items: { enum: ["Clone", "Start", "Stop", "Suspend", "Delete"] } });
    expect(row.createdAt).toMatchObject({ type: "string", format: "date-time" });
    // One state or several: a repeated query parameter, typed as a list for client generators.
    const parameters = openApiDocument("https://hangar.example").paths?.["/vms"]?.get?.parameters ?? [];
    const state = parameters.find((parameter) => "name" in parameter && parameter.name === "state");
    expect(state).toMatchObject({ style: "form", explode: true, schema: { type: "array", items: { enum: expect.arrayContaining(["Running"]) } } });
    expect(JSON.stringify(document.paths["/vms/{id}/exec"])).toContain("#/components/schemas/ExecResult");
  });

  it("has routes for images, snapshots, pools, waiting, events and the audit log, with image sizes as integers", () => {
    expect(declaredRoutes()).toEqual(
      expect.arrayContaining([
        "GET /images",
        "GET /images/{id}",
        "POST /images",
        "POST /images/{id}/delete",
        "GET /vms/{id}/snapshots",
        "POST /vms/{id}/snapshots",
        "POST /vms/{id}/snapshots/{name}/revert",
        "POST /vms/{id}/snapshots/{name}/delete",
        "GET /pools",
        "POST /pools",
        "POST /pools/{poolId}/acquire",
        "POST /vms/{vmId}/release",
        "GET /vms/{id}/wait",
        "GET /events",
        "GET /audit",
        "POST /vms/{id}/forwards",
        "POST /vms/{id}/forwards/delete",
      ]),
    );
    const image = z.object({ properties: z.record(z.string(), z.unknown()) }).parse(document.components.schemas?.Image).properties;
    expect(image.sizeBytes).toMatchObject({ type: "integer", format: "int64", description: expect.stringMatching(/JSON integer over REST/) });
    expect(JSON.stringify(document.paths["/images"])).toContain("#/components/schemas/Image");
    expect(JSON.stringify(document.paths["/pools/{poolId}/acquire"])).toContain("#/components/schemas/AcquiredVm");
    expect(JSON.stringify(document.paths["/events"])).toContain("#/components/schemas/EventPage");
  });

  it("has routes for tokens, users, the caller's account and SSH keys, vm.sync and hosts, each answering a named schema", () => {
    const expected: Record<string, string> = {
      "GET /tokens": "Token",
      "POST /tokens": "CreatedToken",
      "POST /tokens/{id}/revoke": "RevokedToken",
      "GET /users": "User",
      "POST /users": "User",
      "POST /users/{id}": "User",
      "POST /users/{id}/password": "UserId",
      "POST /users/{id}/delete": "UserId",
      "GET /account": "Me",
      "GET /account/ssh-keys": "SshKey",
      "POST /account/ssh-keys": "SshKey",
      "POST /account/ssh-keys/{id}/delete": "SshKeyRemoved",
      "POST /vms/{id}/sync": "VmSynced",
      "GET /hosts": "Host",
    };
    expect(declaredRoutes()).toEqual(expect.arrayContaining(Object.keys(expected)));
    for (const [route, schema] of Object.entries(expected)) {
      const [method = "", routePath = ""] = route.split(" ");
      const success = document.paths[routePath]?.[method.toLowerCase() as "get" | "post"]?.responses["200"];
      expect(JSON.stringify(success?.content), route).toContain(`"#/components/schemas/${schema}"`);
      expect(document.components.schemas?.[schema], route).toBeDefined();
    }
    const created = z.object({ required: z.array(z.string()), properties: z.record(z.string(), z.unknown()) }).parse(document.components.schemas?.CreatedToken);
    expect(created.required).toEqual(expect.arrayContaining(["token", "id", "prefix", "readOnly"]));
    // The list never carries a token, nor its hash.
    const listed = z.object({ properties: z.record(z.string(), z.unknown()) }).parse(document.components.schemas?.Token).properties;
    expect(Object.keys(listed)).not.toEqual(expect.arrayContaining(["token"]));
    expect(Object.keys(listed)).not.toEqual(expect.arrayContaining(["hash"]));
    // A person's own password change, and the first-run setup, are not for services.
    const routeOf = (name: string) => (appRouter._def.procedures as unknown as Record<string, AnyProcedure>)[name]?._def.meta as Meta | undefined;
    expect(routeOf("account.changePassword")).toBeDefined();
    expect(routeOf("account.changePassword")?.openapi).toBeUndefined();
    expect(routeOf("account.createFirstAdmin")?.openapi).toBeUndefined();
  });

  it("documents a schema for every route's answer", () => {
    for (const [route, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const schema = op?.responses["200"]?.content?.["application/json"]?.schema;
        expect(schema && Object.keys(schema).length > 0, `${method} ${route}`).toBe(true);
      }
    }
  });

  it("describes a page of the inventory: its rows' fields, the cursor and the total", () => {
    const schemas = JSON.stringify(document.components.schemas);
    const page = z.object({ properties: z.object({ items: z.unknown(), nextCursor: z.unknown(), total: z.unknown() }) });
    expect(page.safeParse(document.components.schemas?.VmPage).success).toBe(true);
    expect(JSON.stringify(document.paths["/vms"])).toContain("#/components/schemas/VmPage");
    for (const field of ["state", "memoryMiB", "actions", "readyState"]) expect(schemas).toContain(`"${field}"`);
  });
});

describe("REST over HTTP with a token", () => {
  let t: TestHangar;
  let server: http.Server;
  let port: number;
  let adminToken: string;
  let viewerToken: string;
  let operatorToken: string;
  let imageId: string;
  const fake = new FakeDriver();

  beforeAll(async () => {
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    t = await createTestHangar({ driverFor: fake.managerFor, settings: { PORT: port } });
    const noPages = { handle: async () => undefined, handleUpgrade: async () => undefined };
    createHttpServer({ hangar: t.hangar, dev: false, pages: noPages }, server);
    adminToken = (await (await callerFor(t.hangar, "admin")).token.create({ name: "rest" })).token;
    viewerToken = (await (await callerFor(t.hangar, "viewer")).token.create({ name: "rest" })).token;
    operatorToken = (await (await callerFor(t.hangar, "operator")).token.create({ name: "rest" })).token;
    imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
    // A server registers its host as it starts (main.ts); this one, as a server would before any call.
    await t.hangar.hosts.selfId();
  });

  afterAll(async () => {
    await t.hangar.pools.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    t.hangar.terminals.close();
    await t.cleanup();
  });

  /** A call with `body` as JSON, or `raw` as the body's text exactly (JSON's content type unless `type` says). */
  function call(
    method: "GET" | "POST",
    path: string,
    options: { token?: string; body?: unknown; raw?: string; type?: string; host?: string; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = { host: options.host ?? `127.0.0.1:${port}`, ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined || options.raw !== undefined) headers["content-type"] = "application/json";
    if (options.type !== undefined) headers["content-type"] = options.type;
    return new Promise<{ status: number; type: string | undefined; body: unknown }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          const json = /^application\/json/.test(res.headers["content-type"] ?? "");
          resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body: json ? (JSON.parse(text) as unknown) : text });
        });
      });
      req.on("error", reject);
      req.end(options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)));
    });
  }

  it("serves the document at /api/openapi.json", async () => {
    const reply = await call("GET", "/api/openapi.json");
    expect(reply.status).toBe(200);
    expect(reply.type).toMatch(/^application\/json/);
    const document = openApi.parse(reply.body);
    expect(document.servers[0]?.url).toBe(`http://127.0.0.1:${port}/api/v1`);
  });

  it("creates on a host it lists, reads, starts and lists a VM", async () => {
    const hosts = await call("GET", "/api/v1/hosts", { token: viewerToken });
    // A viewer gets what placement needs; where hosts call each other is the admins'.
    expect(hosts).toMatchObject({ status: 200, body: [{ online: true, accelerator: expect.any(String), bridges: [], apiAddress: null, bootId: null }] });
    expect(await call("GET", "/api/v1/hosts", { token: adminToken })).toMatchObject({ body: [{ apiAddress: expect.stringMatching(/^http:\/\//) }] });
    const hostId = z.array(z.object({ id: z.string() })).parse(hosts.body)[0]?.id;
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-1", imageId, cpus: 1, memoryMiB: 256, hostId } });
    expect(created).toMatchObject({
      status: 200,
      body: { name: "rest-1", state: "Stopped", cpus: 1, memoryMiB: 256, actions: expect.arrayContaining(["Start"]), host: { id: hostId } },
    });
    const id = z.object({ id: z.string() }).parse(created.body).id;

    const read = await call("GET", `/api/v1/vms/${id}`, { token: adminToken });
    expect(read).toMatchObject({ status: 200, body: { id, name: "rest-1", state: "Stopped" } });
    // Dates are JSON strings over REST (superjson is tRPC's alone).
    expect(z.object({ createdAt: z.iso.datetime() }).safeParse(read.body).success).toBe(true);

    const started = await call("POST", `/api/v1/vms/${id}/start`, { token: adminToken, body: {} });
    expect(started).toMatchObject({ status: 200, body: { id, state: "Running" } });

    const listed = await call("GET", "/api/v1/vms", { token: viewerToken });
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({ items: [expect.objectContaining({ id, name: "rest-1", state: "Running" })], nextCursor: null, total: 1 });
    const filtered = await call("GET", "/api/v1/vms?search=REST&state=Running&limit=5&sort=name&order=desc", { token: viewerToken });
    expect(filtered).toMatchObject({ status: 200, body: { items: [expect.objectContaining({ id })], total: 1 } });
    expect(await call("GET", "/api/v1/vms?state=Stopped", { token: viewerToken })).toMatchObject({ status: 200, body: { items: [], total: 0 } });
  });

  it("maps the errorFormatter's codes to HTTP statuses, with its sentences", async () => {
    expect(await call("GET", "/api/v1/vms")).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED", message: expect.stringMatching(/API token/) } });
    expect(await call("GET", "/api/v1/vms", { token: "not-a-token" })).toMatchObject({ status: 401 });
    expect(await call("GET", "/api/v1/vms/nosuchvm", { token: adminToken })).toMatchObject({
      status: 404,
      body: { code: "NOT_FOUND", message: expect.stringMatching(/No VM with id "nosuchvm"/) },
    });
    expect(await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "Bad_Name", imageId, cpus: 1, memoryMiB: 256 } })).toMatchObject({
      status: 400,
      body: { code: "BAD_REQUEST" },
    });
    const vm = await t.hangar.db.vm.findFirstOrThrow({ where: { name: "rest-1" } });
    expect(await call("POST", `/api/v1/vms/${vm.id}/stop`, { token: viewerToken, body: {} })).toMatchObject({ status: 403, body: { code: "FORBIDDEN" } });
    expect(await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-1", imageId, cpus: 1, memoryMiB: 256 } })).toMatchObject({
      status: 409,
      body: { code: "CONFLICT" },
    });
    expect(await call("GET", "/api/v1/nothing-here", { token: adminToken })).toMatchObject({ status: 404 });
  });

  it("refuses query parameters named like Object.prototype members with 400, before sign-in too", async () => {
    for (const key of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      for (const token of [undefined, viewerToken]) {
        const reply = await call("GET", `/api/v1/vms?${key}=1`, { token });
        expect(reply, key).toMatchObject({
          status: 400,
          body: { code: "BAD_REQUEST", message: `The query parameter "${key}" is not one any route takes; leave it out.` },
        });
      }
    }
    expect(await call("GET", "/api/v1/vms?limit=5&state=Running&state=Stopped", { token: viewerToken })).toMatchObject({ status: 200 });
  });

  it("refuses a query parameter the route does not take, rather than answer as if unfiltered", async () => {
    expect(await call("GET", "/api/v1/events?stream=audit", { token: viewerToken })).toMatchObject({
      status: 400,
      body: { code: "BAD_REQUEST", message: 'GET /events takes no parameter "stream"; its parameters are vmId, vmName, limit, cursor.' },
    });
    expect(await call("GET", "/api/v1/vms?limt=5", { token: viewerToken })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^GET \/vms takes no parameter "limt"; its parameters are .*limit/) },
    });
    expect(await call("GET", "/api/v1/images?x=1", { token: viewerToken })).toMatchObject({
      status: 400,
      body: { message: 'GET /images takes no parameter "x"; it takes no parameters.' },
    });
  });

  it("takes a body only as a JSON object, and an empty one as no fields", async () => {
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-body", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    expect(await call("POST", "/api/v1/vms", { token: adminToken, raw: "{bad" })).toMatchObject({
      status: 400,
      body: {
        code: "BAD_REQUEST",
        message: "The request body is not valid JSON; send a JSON object of the route's fields, such as {}.",
        data: { domainCode: "INVALID_INPUT" },
      },
    });
    for (const [raw, got] of [
      ["null", "null"],
      ['"str"', "a string"],
      ["123", "a number"],
      ["true", "a boolean"],
      ["[]", "an array"],
    ]) {
      expect(await call("POST", `/api/v1/vms/${id}/start`, { token: adminToken, raw }), raw).toMatchObject({
        status: 400,
        body: { code: "BAD_REQUEST", message: `The request body must be a JSON object of the route's fields, such as {}, not ${got}.` },
      });
    }
    expect((await t.hangar.db.vm.findUniqueOrThrow({ where: { id } })).state).toBe("Stopped");
    // No fields: with the JSON type or none, the route's schema decides (start and stop need only the id).
    expect(await call("POST", `/api/v1/vms/${id}/start`, { token: adminToken, raw: "" })).toMatchObject({ status: 200, body: { state: "Running" } });
    expect(await call("POST", `/api/v1/vms/${id}/stop`, { token: adminToken })).toMatchObject({ status: 200, body: { state: "Stopped" } });
    expect(await call("POST", "/api/v1/vms", { token: adminToken, raw: "" })).toMatchObject({ status: 400, body: { code: "BAD_REQUEST" } });
    expect(await call("POST", `/api/v1/vms/${id}/start`, { token: adminToken, raw: "{}", type: "text/plain" })).toMatchObject({ status: 415 });
  });

  it("words input errors as tRPC does, without zod's raw issues", async () => {
    const badName = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "Bad_Name", imageId, cpus: 1, memoryMiB: 256 } });
    expect(badName).toMatchObject({
      status: 400,
      body: { code: "BAD_REQUEST", message: expect.stringMatching(/^name: .*DNS labels/), data: { domainCode: "INVALID_INPUT" } },
    });
    expect(badName.body).not.toHaveProperty("issues");
    const badLimit = await call("GET", "/api/v1/vms?limit=abc", { token: viewerToken });
    expect(badLimit).toMatchObject({ status: 400, body: { code: "BAD_REQUEST", message: expect.stringMatching(/^limit/) } });
    expect(badLimit.body).not.toHaveProperty("issues");
  });

  it('leaves booleans uncoerced for every transport once a REST route ran: the string "false" is refused, never taken as true', async () => {
    const rest = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "coerced", imageId, cpus: 1, memoryMiB: 256, autostart: "false" } });
    expect(rest).toMatchObject({ status: 400, body: { code: "BAD_REQUEST", message: expect.stringMatching(/^autostart/) } });
    const admin = await callerFor(t.hangar, "admin");
    const viaTrpc = await admin.vm.create({ name: "coerced", imageId, cpus: 1, memoryMiB: 256, autostart: "false" as unknown as boolean }).then(
      () => "created",
      (error: unknown) => (error instanceof TRPCError ? error.code : String(error)),
    );
    expect(viaTrpc).toBe("BAD_REQUEST");
    // Numbers keep the library's coercion: query strings carry them.
    expect(await call("GET", "/api/v1/vms?limit=1", { token: viewerToken })).toMatchObject({ status: 200 });
  });

  it("takes JSON numbers in a body as they are: a string, boolean, array or null is refused, over tRPC too once REST ran", async () => {
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "numbers", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    for (const cpus of ["2", [2], true, null, ""]) {
      expect(await call("POST", `/api/v1/vms/${id}/resize`, { token: adminToken, body: { cpus } }), JSON.stringify(cpus)).toMatchObject({
        status: 400,
        body: { code: "BAD_REQUEST", message: expect.stringMatching(/^cpus: .*expected number/) },
      });
    }
    expect((await t.hangar.db.vm.findUniqueOrThrow({ where: { id } })).cpus).toBe(1);
    const admin = await callerFor(t.hangar, "admin");
    const viaTrpc = await admin.vm.resize({ id, cpus: true as unknown as number }).then(
      () => "resized",
      (error: unknown) => (error instanceof TRPCError ? error.code : String(error)),
    );
    expect(viaTrpc).toBe("BAD_REQUEST");
    expect(await call("POST", `/api/v1/vms/${id}/resize`, { token: adminToken, body: { cpus: 2 } })).toMatchObject({ status: 200, body: { cpus: 2 } });
  });

  it("refuses fields a route does not take, in the body or the query string of a POST, naming them", async () => {
    const typo = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "typo", imageId, cpus: 1, memoryMiB: 256, diskGib: 20 } });
    expect(typo).toMatchObject({
      status: 400,
      body: { code: "BAD_REQUEST", message: expect.stringMatching(/^POST \/vms takes no field "diskGib"; its fields are name, imageId, .*diskGiB/) },
    });
    expect(await t.hangar.db.vm.findFirst({ where: { name: "typo" } })).toBeNull();
    const vm = await t.hangar.db.vm.findFirstOrThrow({ where: { name: "rest-1" } });
    expect(await call("POST", `/api/v1/vms/${vm.id}/stop?timeoutSec=5`, { token: adminToken, body: {} })).toMatchObject({
      status: 400,
      body: { code: "BAD_REQUEST", message: 'POST /vms/{id}/stop takes its fields in the JSON body, not the query string; move "timeoutSec" there.' },
    });
    expect((await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).state).toBe("Running");
    // The path's id may come in the body as well (the path's wins).
    expect(await call("POST", `/api/v1/vms/${vm.id}/tags`, { token: adminToken, body: { id: vm.id, tags: ["x"] } })).toMatchObject({ status: 200 });
  });

  it("answers an unknown route 404 and a known one with the wrong method 405 with Allow, each with a sentence", async () => {
    expect(await call("GET", "/api/v1/nothing-here", { token: adminToken })).toMatchObject({
      status: 404,
      body: { code: "NOT_FOUND", message: "No route GET /api/v1/nothing-here; /api/openapi.json lists them." },
    });
    expect(await call("GET", "/api/v1/vms/abc/start", { token: adminToken })).toMatchObject({
      status: 405,
      body: { code: "METHOD_NOT_SUPPORTED", message: "/vms/{id}/start is called with POST, not GET." },
    });
    expect(await call("POST", "/api/v1/vms/abc", { token: adminToken, body: {} })).toMatchObject({
      status: 405,
      body: { message: "/vms/{id} is called with GET, not POST." },
    });
    // A HEAD runs its GET: a missing VM is 404 (the library alone answered every HEAD 204).
    const head = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const headers = { host: `127.0.0.1:${port}`, authorization: `Bearer ${viewerToken}` };
        const req = http.request({ host: "127.0.0.1", port, method: "HEAD", path, headers }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await head("/api/v1/vms/nosuchvm")).toBe(404);
    expect(await head("/api/v1/vms")).toBe(200);
  });

  it("takes the JSON media type in any case, and words the refusal of another", async () => {
    const vm = await t.hangar.db.vm.findFirstOrThrow({ where: { name: "rest-1" } });
    expect(await call("POST", `/api/v1/vms/${vm.id}/tags`, { token: adminToken, body: { tags: [] }, type: "Application/JSON; charset=UTF-8" })).toMatchObject({
      status: 200,
    });
    expect(await call("POST", `/api/v1/vms/${vm.id}/tags`, { token: adminToken, raw: "{}", type: "text/plain" })).toMatchObject({
      status: 415,
      body: { code: "UNSUPPORTED_MEDIA_TYPE", message: 'Send the body as JSON with Content-Type: application/json (the request\'s was "text/plain").' },
    });
  });

  it("says that a token sent is not valid, rather than ask for one", async () => {
    expect(await call("GET", "/api/v1/vms", { token: "hgr_revoked-or-mistyped" })).toMatchObject({
      status: 401,
      body: { code: "UNAUTHORIZED", message: expect.stringMatching(/^That API token is not valid/), data: { domainCode: "UNAUTHENTICATED" } },
    });
  });

  it("compresses JSON answers when the client accepts gzip, as /api/trpc does", async () => {
    const answer = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      const headers = { host: `127.0.0.1:${port}`, authorization: `Bearer ${viewerToken}`, "accept-encoding": "gzip" };
      http
        .get({ host: "127.0.0.1", port, path: "/api/v1/vms", headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }));
        })
        .on("error", reject);
    });
    expect(answer.encoding).toBe("gzip");
    expect(JSON.parse(gunzipSync(answer.body).toString("utf8"))).toMatchObject({ items: expect.any(Array) });
  });

  it("tags a GET's answer with an ETag and answers 304 without a body while it is unchanged", async () => {
    const get = (path: string, ifNoneMatch?: string) =>
      new Promise<{ status: number; etag: string | undefined; body: string }>((resolve, reject) => {
        const headers: Record<string, string> = { host: `127.0.0.1:${port}`, authorization: `Bearer ${viewerToken}` };
        if (ifNoneMatch) headers["if-none-match"] = ifNoneMatch;
        http
          .get({ host: "127.0.0.1", port, path, headers }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body }));
          })
          .on("error", reject);
      });
    const first = await get("/api/v1/vms");
    expect(first).toMatchObject({ status: 200, etag: expect.stringMatching(/^"[\w-]+"$/) });
    expect(await get("/api/v1/vms", first.etag)).toEqual({ status: 304, etag: first.etag, body: "" });
    const vm = await t.hangar.db.vm.findFirstOrThrow({ where: { name: "rest-1" } });
    await call("POST", `/api/v1/vms/${vm.id}/tags`, { token: adminToken, body: { tags: ["etag-changed"] } });
    expect((await get("/api/v1/vms", first.etag)).status).toBe(200);
    // Errors carry none.
    expect(await get("/api/v1/vms/nosuchvm")).toMatchObject({ status: 404, etag: undefined });
  });

  it("lists and reads images, sizes as JSON integers and host paths for admins alone; tRPC keeps its bigints", async () => {
    const sized = await t.hangar.db.image.create({ data: { name: "sized", path: "/var/lib/hangar/images/s.qcow2", sizeBytes: 5n * 2n ** 30n } });
    const listed = await call("GET", "/api/v1/images", { token: viewerToken });
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: sized.id, name: "sized", sizeBytes: 5 * 2 ** 30, progress: 0, path: null, directBoot: false })]),
    );
    expect(JSON.stringify(listed.body)).not.toContain("/var/lib/hangar");
    const read = await call("GET", `/api/v1/images/${sized.id}`, { token: viewerToken });
    expect(read).toMatchObject({ status: 200, body: { id: sized.id, sizeBytes: 5 * 2 ** 30, path: null, vms: [], pools: [] } });
    expect(await call("GET", `/api/v1/images/${sized.id}`, { token: adminToken })).toMatchObject({
      status: 200,
      body: { path: "/var/lib/hangar/images/s.qcow2" },
    });
    expect(await call("GET", "/api/v1/images/nosuchimage", { token: viewerToken })).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
    const viaTrpc = await (await callerFor(t.hangar, "viewer")).image.list();
    expect(viaTrpc.find((image) => image.id === sized.id)).toMatchObject({ sizeBytes: 5n * 2n ** 30n, progress: 0n, path: null });
    expect((await (await callerFor(t.hangar, "viewer")).image.get({ id: sized.id })).sizeBytes).toBe(5n * 2n ** 30n);
  });

  it("imports an image from a file under the images directory and deletes it, for admins alone", async () => {
    mkdirSync(t.env.imagesDir, { recursive: true });
    writeFileSync(path.join(t.env.imagesDir, "rest-blank.img"), Buffer.alloc(1024 * 1024));
    expect(await call("POST", "/api/v1/images", { token: viewerToken, body: { name: "rest-blank", path: "rest-blank.img" } })).toMatchObject({
      status: 403,
    });
    expect(await call("POST", "/api/v1/images", { token: adminToken, body: { name: "rest-blank" } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/either a path .* or a url/) },
    });
    const imported = await call("POST", "/api/v1/images", { token: adminToken, body: { name: "rest-blank", path: "rest-blank.img" } });
    expect(imported).toMatchObject({ status: 200, body: { name: "rest-blank", status: "ready", format: "qcow2", progress: 1024 * 1024 } });
    const image = z.object({ id: z.string(), sizeBytes: z.number().int().positive() }).parse(imported.body);
    expect(await call("POST", `/api/v1/images/${image.id}/delete`, { token: viewerToken, body: {} })).toMatchObject({ status: 403 });
    expect(await call("POST", `/api/v1/images/${image.id}/delete`, { token: adminToken, body: {} })).toEqual(
      expect.objectContaining({ status: 200, body: { id: image.id } }),
    );
    expect(await t.hangar.db.image.findUnique({ where: { id: image.id } })).toBeNull();
    // In use: refused with the reason.
    await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-image-user", imageId, cpus: 1, memoryMiB: 256 } });
    expect(await call("POST", `/api/v1/images/${imageId}/delete`, { token: adminToken, body: {} })).toMatchObject({
      status: 409,
      body: { data: { domainCode: "IMAGE_IN_USE" } },
    });
  });

  it("takes, lists, reverts and deletes snapshots of a stopped VM, each answering the list", async () => {
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-snap", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    expect(await call("GET", `/api/v1/vms/${id}/snapshots`, { token: viewerToken })).toMatchObject({ status: 200, body: [] });
    const taken = await call("POST", `/api/v1/vms/${id}/snapshots`, { token: adminToken, body: { name: "before" } });
    expect(taken).toMatchObject({ status: 200, body: [{ name: "before", vmStateBytes: 0, createdAt: expect.any(String) }] });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots`, { token: adminToken, body: { name: "before" } })).toMatchObject({ status: 409 });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots`, { token: adminToken, body: { name: "hangar-x" } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/reserved/) },
    });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots`, { token: viewerToken, body: { name: "mine" } })).toMatchObject({ status: 403 });
    expect(await call("GET", `/api/v1/vms/${id}/snapshots`, { token: viewerToken })).toMatchObject({ status: 200, body: [{ name: "before" }] });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots/before/revert`, { token: adminToken })).toMatchObject({ status: 200, body: [{ name: "before" }] });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots/nothing/delete`, { token: adminToken, body: {} })).toMatchObject({
      status: 404,
      body: { message: expect.stringMatching(/no snapshot named "nothing"/) },
    });
    expect(await call("POST", `/api/v1/vms/${id}/snapshots/before/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 200, body: [] });
  });

  it("waits for a VM's state, and pages its events by cursor", async () => {
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-wait", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    expect(await call("GET", `/api/v1/vms/${id}/wait?for=Stopped&timeoutSec=5`, { token: viewerToken })).toMatchObject({
      status: 200,
      body: { id, state: "Stopped" },
    });
    const waiting = call("GET", `/api/v1/vms/${id}/wait?for=Running&timeoutSec=10`, { token: viewerToken });
    await call("POST", `/api/v1/vms/${id}/start`, { token: adminToken, body: {} });
    expect(await waiting).toMatchObject({ status: 200, body: { id, state: "Running" } });
    expect(await call("GET", `/api/v1/vms/${id}/wait?for=Sleeping`, { token: viewerToken })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^for is "ready" or a VM state/) },
    });
    expect(await call("GET", `/api/v1/vms/${id}/wait?for=Stopped&timeoutSec=1`, { token: viewerToken })).toMatchObject({ status: 408 });

    const pages: { action: string }[][] = [];
    let cursor: string | undefined;
    do {
      const page = await call("GET", `/api/v1/events?vmId=${id}&limit=1${cursor ? `&cursor=${cursor}` : ""}`, { token: viewerToken });
      expect(page.status).toBe(200);
      const parsed = z
        .object({ events: z.array(z.object({ vmId: z.string(), action: z.string(), createdAt: z.iso.datetime() })), nextCursor: z.string().optional() })
        .parse(page.body);
      expect(parsed.events.every((event) => event.vmId === id)).toBe(true);
      pages.push(parsed.events);
      cursor = parsed.nextCursor;
    } while (cursor && pages.length < 20);
    expect(pages.every((events) => events.length === 1)).toBe(true);
    const all = await call("GET", `/api/v1/events?vmId=${id}&limit=200`, { token: viewerToken });
    expect(all).toMatchObject({ status: 200, body: { events: pages.flat() } });
    expect(all.body).not.toHaveProperty("nextCursor");
    expect(pages.flat().map((event) => event.action)).toEqual(expect.arrayContaining(["create", "start"]));

    expect(await call("GET", "/api/v1/audit?limit=2", { token: viewerToken })).toMatchObject({ status: 403 });
    const audit = await call("GET", "/api/v1/audit?stream=audit&limit=2", { token: adminToken });
    expect(audit).toMatchObject({ status: 200, body: { events: expect.any(Array) } });
  });

  it("makes a pool, acquires a VM from it with its key for the caller alone, and releases it", async () => {
    const spec = { name: "rest-pool", imageId, cpus: 1, memoryMiB: 128, size: 1, staging: "Running" };
    expect(await call("POST", "/api/v1/pools", { token: viewerToken, body: spec })).toMatchObject({ status: 403 });
    const made = await call("POST", "/api/v1/pools", { token: adminToken, body: spec });
    expect(made).toMatchObject({ status: 200, body: { name: "rest-pool", size: 1, staging: "Running" } });
    const poolId = z.object({ id: z.string() }).parse(made.body).id;
    expect(await call("POST", `/api/v1/pools/${poolId}/acquire`, { token: viewerToken, body: {} })).toMatchObject({ status: 403 });
    const acquired = await call("POST", `/api/v1/pools/${poolId}/acquire`, { token: adminToken, body: { timeoutSec: 30 } });
    expect(acquired).toMatchObject({
      status: 200,
      body: { name: expect.stringMatching(/^rest-pool-/), sshPort: expect.any(Number), privateKey: expect.any(String) },
    });
    const vmId = z.object({ vmId: z.string() }).parse(acquired.body).vmId;
    const keyed = await call("POST", `/api/v1/pools/${poolId}/acquire`, {
      token: adminToken,
      body: { timeoutSec: 30, publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0rAEgJkAtD2dYdQ2nkrW8VZV5mXP2R8I2y5xG3R5o rest" },
    });
    expect(keyed.status).toBe(200);
    expect(keyed.body).not.toHaveProperty("privateKey");
    const pools = await call("GET", "/api/v1/pools", { token: viewerToken });
    expect(pools).toMatchObject({ status: 200, body: [expect.objectContaining({ id: poolId, image: { name: "base" }, deleting: false })] });
    expect(JSON.stringify(pools.body)).not.toMatch(/PRIVATE KEY/);
    expect(await call("POST", `/api/v1/vms/${vmId}/release`, { token: viewerToken, body: {} })).toMatchObject({ status: 403 });
    expect(await call("POST", `/api/v1/vms/${vmId}/release`, { token: adminToken, body: {} })).toMatchObject({ status: 200, body: { vmId } });
    expect(await t.hangar.db.vm.findUnique({ where: { id: vmId } })).toBeNull();
    expect(await call("POST", `/api/v1/pools/${poolId}/resize`, { token: adminToken, body: { size: 0 } })).toMatchObject({ status: 200, body: { size: 0 } });
    expect(await call("POST", `/api/v1/pools/${poolId}/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 200, body: { id: poolId } });
  });

  it("adds and removes port forwards, and sets protection, autostart, description and disk size", async () => {
    const created = await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-knobs", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    expect(await call("POST", `/api/v1/vms/${id}/forwards`, { token: adminToken, body: { hostPort: 0, guestPort: 8080 } })).toMatchObject({
      status: 200,
      body: { vmId: id, hostPort: 0, guestPort: 8080, boundPort: null },
    });
    expect(await call("POST", `/api/v1/vms/${id}/forwards`, { token: adminToken, body: { hostPort: 0, guestPort: "8081" } })).toMatchObject({ status: 400 });
    expect(await call("POST", `/api/v1/vms/${id}/forwards/delete`, { token: adminToken, body: { guestPort: 8080 } })).toMatchObject({
      status: 200,
      body: { guestPort: 8080 },
    });
    expect(await call("POST", `/api/v1/vms/${id}/protection`, { token: adminToken, body: { protection: true } })).toMatchObject({
      status: 200,
      body: { protection: true },
    });
    expect(await call("POST", `/api/v1/vms/${id}/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 412 });
    expect(await call("POST", `/api/v1/vms/${id}/protection`, { token: adminToken, body: { protection: "false" } })).toMatchObject({ status: 400 });
    expect(await call("POST", `/api/v1/vms/${id}/autostart`, { token: adminToken, body: { autostart: true, order: 2 } })).toMatchObject({
      status: 200,
      body: { autostart: true, order: 2, delaySec: 0 },
    });
    expect(await call("POST", `/api/v1/vms/${id}/description`, { token: adminToken, body: { description: "CI runner" } })).toMatchObject({
      status: 200,
      body: { description: "CI runner" },
    });
    const grown = await call("POST", `/api/v1/vms/${id}/disk/resize`, { token: adminToken, body: { diskGiB: 30 } });
    expect(grown.status).toBe(200);
  });

  /** A fresh OpenSSH ed25519 public key line, and the fingerprint ssh-keygen -l gives it. */
  function publicKey(comment: string) {
    const { publicKey: key } = generateKeyPairSync("ed25519");
    const raw = Buffer.from(z.object({ x: z.string() }).parse(key.export({ format: "jwk" })).x, "base64url");
    const field = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
    const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(raw)]);
    const fingerprint = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
    return { line: `ssh-ed25519 ${blob.toString("base64")} ${comment}`, fingerprint };
  }

  it("lists, makes and revokes the caller's own tokens; the secret is answered once and works at once", async () => {
    const mine = await call("GET", "/api/v1/tokens", { token: operatorToken });
    expect(mine).toMatchObject({ status: 200, body: [expect.objectContaining({ name: "rest", prefix: expect.stringMatching(/^hgr_/), revokedAt: null })] });
    // Only the operator's own, and no secret or hash in sight.
    expect(z.array(z.unknown()).parse(mine.body)).toHaveLength(1);
    expect(JSON.stringify(mine.body)).not.toContain(operatorToken);
    expect(mine.body).toEqual([expect.not.objectContaining({ hash: expect.anything() })]);

    const made = await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "ci runner", expiresInDays: 30 } });
    expect(made).toMatchObject({
      status: 200,
      body: {
        name: "ci runner",
        readOnly: false,
        token: expect.stringMatching(/^hgr_/),
        prefix: expect.stringMatching(/^hgr_/),
        expiresAt: expect.any(String),
      },
    });
    const created = z.object({ id: z.string(), token: z.string(), expiresAt: z.iso.datetime() }).parse(made.body);
    expect(new Date(created.expiresAt).getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(await call("GET", "/api/v1/account", { token: created.token })).toMatchObject({
      status: 200,
      body: {
        user: { email: "operator@test.hangar", role: "operator", via: "token", tokenName: "ci runner", label: "token ci runner (operator@test.hangar)" },
      },
    });
    const listed = await call("GET", "/api/v1/tokens", { token: created.token });
    expect(listed).toMatchObject({
      status: 200,
      body: [expect.objectContaining({ name: "rest" }), expect.objectContaining({ id: created.id, name: "ci runner" })],
    });
    expect(JSON.stringify(listed.body)).not.toContain(created.token);
    // The change is audited as the token that made it.
    expect(await t.hangar.db.event.count({ where: { action: "token-create", target: "ci runner", actor: "token rest (operator@test.hangar)" } })).toBe(1);

    expect(await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "ci runner" } })).toMatchObject({
      status: 409,
      body: { data: { domainCode: "ALREADY_EXISTS" } },
    });
    expect(await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "x", expiresInDays: "30" } })).toMatchObject({ status: 400 });
    expect(await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "x", role: "admin" } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/takes no field "role"/) },
    });

    // Someone else's token is not found, and stays valid.
    const adminTokens = z.array(z.object({ id: z.string() })).parse((await call("GET", "/api/v1/tokens", { token: adminToken })).body);
    const adminTokenId = adminTokens[0]?.id ?? "";
    expect(await call("POST", `/api/v1/tokens/${adminTokenId}/revoke`, { token: operatorToken })).toMatchObject({
      status: 404,
      body: { code: "NOT_FOUND", message: `No token with id "${adminTokenId}" among yours.` },
    });
    expect((await call("GET", "/api/v1/tokens", { token: adminToken })).status).toBe(200);

    const revoked = await call("POST", `/api/v1/tokens/${created.id}/revoke`, { token: operatorToken, body: {} });
    expect(revoked).toMatchObject({ status: 200, body: { id: created.id, revokedAt: expect.any(String) } });
    expect(await call("GET", "/api/v1/tokens", { token: created.token })).toMatchObject({ status: 401, body: { data: { domainCode: "UNAUTHENTICATED" } } });
    expect(await call("GET", "/api/v1/account", { token: created.token })).toMatchObject({ status: 200, body: { user: null } });
  });

  it("lets a read-only token read its tokens, keys and account, and refuses it every change: no token, key or revoke", async () => {
    const made = await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "reader", readOnly: true } });
    expect(made).toMatchObject({ status: 200, body: { readOnly: true } });
    const reader = z.object({ id: z.string(), token: z.string() }).parse(made.body);
    expect(await call("GET", "/api/v1/account", { token: reader.token })).toMatchObject({ status: 200, body: { user: { readOnly: true, via: "token" } } });
    expect((await call("GET", "/api/v1/tokens", { token: reader.token })).status).toBe(200);
    expect((await call("GET", "/api/v1/account/ssh-keys", { token: reader.token })).status).toBe(200);
    const before = await t.hangar.db.apiToken.count();
    for (const body of [{ name: "escalated" }, { name: "escalated", readOnly: false }, { name: "escalated", readOnly: true }]) {
      expect(await call("POST", "/api/v1/tokens", { token: reader.token, body }), JSON.stringify(body)).toMatchObject({
        status: 403,
        body: { code: "FORBIDDEN", message: expect.stringMatching(/^Token reader is read-only/) },
      });
    }
    expect(await t.hangar.db.apiToken.count()).toBe(before);
    expect(await call("POST", `/api/v1/tokens/${reader.id}/revoke`, { token: reader.token })).toMatchObject({ status: 403 });
    expect(await call("POST", "/api/v1/account/ssh-keys", { token: reader.token, body: { publicKey: publicKey("ro").line } })).toMatchObject({ status: 403 });
    expect((await t.hangar.db.apiToken.findUniqueOrThrow({ where: { id: reader.id } })).revokedAt).toBeNull();
  });

  it("manages users for admins alone: add, list, change role and quotas, set a password, remove", async () => {
    const spec = { email: "Rest.User@test.hangar", name: "Rest User", password: "a long password", role: "operator" };
    const admin = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "admin@test.hangar" } });
    const operator = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "operator@test.hangar" } });
    // Every admin route refuses a non-admin token with 403, and changes nothing.
    for (const token of [viewerToken, operatorToken]) {
      expect(await call("GET", "/api/v1/users", { token })).toMatchObject({ status: 403, body: { code: "FORBIDDEN", message: "Only admins can do this." } });
      expect(await call("POST", "/api/v1/users", { token, body: spec })).toMatchObject({ status: 403 });
      expect(await call("POST", `/api/v1/users/${operator.id}`, { token, body: { role: "admin" } })).toMatchObject({ status: 403 });
      expect(await call("POST", `/api/v1/users/${admin.id}/password`, { token, body: { password: "taken over!" } })).toMatchObject({ status: 403 });
      expect(await call("POST", `/api/v1/users/${admin.id}/delete`, { token, body: {} })).toMatchObject({ status: 403 });
    }
    expect((await t.hangar.db.user.findUniqueOrThrow({ where: { id: operator.id } })).role).toBe("operator");
    expect(await t.hangar.db.user.findUnique({ where: { email: "rest.user@test.hangar" } })).toBeNull();

    const added = await call("POST", "/api/v1/users", { token: adminToken, body: spec });
    expect(added).toMatchObject({
      status: 200,
      body: { email: "rest.user@test.hangar", name: "Rest User", role: "operator", disabled: false, maxVms: null, createdAt: expect.any(String) },
    });
    expect(JSON.stringify(added.body)).not.toContain("a long password");
    const id = z.object({ id: z.string() }).parse(added.body).id;
    expect(await call("POST", "/api/v1/users", { token: adminToken, body: spec })).toMatchObject({
      status: 409,
      body: { data: { domainCode: "ALREADY_EXISTS" } },
    });
    expect(await call("POST", "/api/v1/users", { token: adminToken, body: { ...spec, email: "other@test.hangar", role: "root" } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/role must be admin, operator or viewer/) },
    });
    expect(await call("POST", "/api/v1/users", { token: adminToken, body: { ...spec, email: "short@test.hangar", password: "short" } })).toMatchObject({
      status: 400,
    });
    const listed = await call("GET", "/api/v1/users", { token: adminToken });
    expect(listed).toMatchObject({ status: 200, body: expect.arrayContaining([expect.objectContaining({ id, role: "operator" })]) });

    const changed = await call("POST", `/api/v1/users/${id}`, { token: adminToken, body: { role: "viewer", maxVms: 3, maxMemoryMiB: 2048 } });
    expect(changed).toMatchObject({ status: 200, body: { id, role: "viewer", maxVms: 3, maxCpus: null, maxMemoryMiB: 2048 } });
    expect(await call("POST", `/api/v1/users/${id}`, { token: adminToken, body: { maxVms: null } })).toMatchObject({ status: 200, body: { maxVms: null } });
    expect(await call("POST", `/api/v1/users/${id}`, { token: adminToken, body: { maxVms: "3" } })).toMatchObject({ status: 400 });
    expect(await call("POST", `/api/v1/users/${id}`, { token: adminToken, body: { disabled: "true" } })).toMatchObject({ status: 400 });
    expect(await call("POST", `/api/v1/users/${id}`, { token: adminToken, body: { quota: 3 } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^POST \/users\/\{id\} takes no field "quota"; its fields are role, disabled, maxVms/) },
    });
    expect(await call("POST", "/api/v1/users/nosuchuser", { token: adminToken, body: { role: "viewer" } })).toMatchObject({
      status: 404,
      body: { message: 'No user with id "nosuchuser".' },
    });
    // The last enabled admin stays one.
    expect(await call("POST", `/api/v1/users/${admin.id}`, { token: adminToken, body: { role: "operator" } })).toMatchObject({
      status: 400,
      body: { message: "This is the last enabled admin; make someone else admin first." },
    });
    expect((await t.hangar.db.user.findUniqueOrThrow({ where: { id: admin.id } })).role).toBe("admin");
    expect(await t.hangar.db.event.count({ where: { action: "user-update", target: "rest.user@test.hangar", actor: "token rest (admin@test.hangar)" } })).toBe(
      2,
    );

    const signIn = async (password: string) =>
      (await t.hangar.auth.api.signInEmail({ body: { email: "rest.user@test.hangar", password }, asResponse: true })).status;
    expect(await signIn("a long password")).toBe(200);
    expect(await call("POST", `/api/v1/users/${id}/password`, { token: adminToken, body: { password: "another long one" } })).toMatchObject({
      status: 200,
      body: { id },
    });
    expect(await signIn("a long password")).toBe(401);
    expect(await signIn("another long one")).toBe(200);

    expect(await call("POST", `/api/v1/users/${id}/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 200, body: { id } });
    expect(await t.hangar.db.user.findUnique({ where: { id } })).toBeNull();
    expect(await call("POST", `/api/v1/users/${id}/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 404 });
    expect(await call("POST", `/api/v1/users/${admin.id}/delete`, { token: adminToken, body: {} })).toMatchObject({ status: 400 });
  });

  it("reads who the caller is and manages their own SSH keys, never another's", async () => {
    expect(await call("GET", "/api/v1/account", { token: viewerToken })).toMatchObject({
      status: 200,
      body: { user: { email: "viewer@test.hangar", role: "viewer", via: "token", tokenName: "rest" }, needsFirstAdmin: false },
    });
    expect(await call("GET", "/api/v1/account")).toMatchObject({ status: 200, body: { user: null, needsFirstAdmin: false } });
    expect(await call("GET", "/api/v1/account/ssh-keys")).toMatchObject({ status: 401 });

    const key = publicKey("alice@laptop");
    const added = await call("POST", "/api/v1/account/ssh-keys", { token: operatorToken, body: { publicKey: key.line } });
    expect(added).toMatchObject({
      status: 200,
      body: { name: "alice@laptop", fingerprint: key.fingerprint, publicKey: key.line.split(" ").slice(0, 2).join(" ") },
    });
    const keyId = z.object({ id: z.string() }).parse(added.body).id;
    expect(await call("POST", "/api/v1/account/ssh-keys", { token: operatorToken, body: { publicKey: key.line, name: "again" } })).toMatchObject({
      status: 409,
      body: { message: `You already added this key (${key.fingerprint}).` },
    });
    expect(await call("POST", "/api/v1/account/ssh-keys", { token: operatorToken, body: { publicKey: "ssh-ed25519 AAAA" } })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/damaged or incomplete/) },
    });
    // A viewer has keys of their own (for VMs an admin gives them), and sees none of the operator's.
    const viewerKey = publicKey("viewer");
    expect(await call("POST", "/api/v1/account/ssh-keys", { token: viewerToken, body: { publicKey: viewerKey.line, name: "mine" } })).toMatchObject({
      status: 200,
      body: { name: "mine" },
    });
    expect(await call("GET", "/api/v1/account/ssh-keys", { token: viewerToken })).toMatchObject({
      status: 200,
      body: [{ name: "mine", fingerprint: viewerKey.fingerprint }],
    });
    expect(await call("GET", "/api/v1/account/ssh-keys", { token: operatorToken })).toMatchObject({
      status: 200,
      body: [{ id: keyId, name: "alice@laptop", createdAt: expect.any(String) }],
    });
    expect(await call("POST", `/api/v1/account/ssh-keys/${keyId}/delete`, { token: viewerToken, body: {} })).toMatchObject({
      status: 404,
      body: { message: `No SSH key with id "${keyId}" among yours.` },
    });
    expect(await call("POST", `/api/v1/account/ssh-keys/${keyId}/delete`, { token: operatorToken, body: {} })).toEqual(
      expect.objectContaining({ status: 200, body: { id: keyId, name: "alice@laptop", fingerprint: key.fingerprint } }),
    );
    expect(await call("GET", "/api/v1/account/ssh-keys", { token: operatorToken })).toMatchObject({ status: 200, body: [] });
    // A password change is a person's, on the Account page: no route for it.
    expect(await call("POST", "/api/v1/account/password", { token: operatorToken, body: { currentPassword: "x", newPassword: "yyyyyyyy" } })).toMatchObject({
      status: 404,
    });
  });

  it("takes a session cookie on the account routes as on the others: a change from another site's page is refused", async () => {
    await call("POST", "/api/v1/users", {
      token: adminToken,
      body: { email: "cookie@test.hangar", name: "Cookie", password: "a long password", role: "viewer" },
    });
    const signedIn = await t.hangar.auth.api.signInEmail({ body: { email: "cookie@test.hangar", password: "a long password" }, asResponse: true });
    const cookie = (signedIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/=/);
    expect(await call("GET", "/api/v1/account", { headers: { cookie } })).toMatchObject({
      status: 200,
      body: { user: { email: "cookie@test.hangar", via: "session" } },
    });
    const crossSite = await call("POST", "/api/v1/tokens", { headers: { cookie, origin: "https://evil.example" }, body: { name: "stolen" } });
    expect(crossSite).toMatchObject({ status: 403, body: { message: expect.stringMatching(/came from a page of another site/) } });
    expect(await t.hangar.db.apiToken.count({ where: { name: "stolen" } })).toBe(0);
    const sameSite = await call("POST", "/api/v1/tokens", { headers: { cookie, origin: `http://127.0.0.1:${port}` }, body: { name: "mine" } });
    expect(sameSite).toMatchObject({ status: 200, body: { name: "mine", token: expect.stringMatching(/^hgr_/) } });
  });

  it("syncs from the sync root into a running VM the caller controls, with errors that name no host path", async () => {
    const created = await call("POST", "/api/v1/vms", { token: operatorToken, body: { name: "rest-sync", imageId, cpus: 1, memoryMiB: 256 } });
    const id = z.object({ id: z.string() }).parse(created.body).id;
    mkdirSync(path.join(t.env.syncRoot, "site"), { recursive: true });
    writeFileSync(path.join(t.env.syncRoot, "site", "index.html"), "hello");
    const sync = { from: "site/", to: "/srv/www", excludes: ["*.tmp"] };
    expect(await call("POST", `/api/v1/vms/${id}/sync`, { token: operatorToken, body: sync })).toMatchObject({
      status: 412,
      body: { data: { domainCode: "NOT_RUNNING" }, message: 'VM "rest-sync" is Stopped; start it first.' },
    });
    expect(await call("POST", `/api/v1/vms/${id}/start`, { token: operatorToken, body: {} })).toMatchObject({ status: 200, body: { state: "Running" } });
    expect(await call("POST", `/api/v1/vms/${id}/sync`, { token: operatorToken, body: sync })).toEqual(
      expect.objectContaining({ status: 200, body: { from: "site/", to: "/srv/www" } }),
    );
    expect(await call("POST", `/api/v1/vms/${id}/sync`, { token: adminToken, body: { from: "site/index.html", to: "/srv", asRoot: true } })).toMatchObject({
      status: 200,
      body: { from: "site/index.html", to: "/srv" },
    });
    // Someone else's VM, a viewer, a read-only token: refused.
    expect(await call("POST", `/api/v1/vms/${id}/sync`, { token: viewerToken, body: sync })).toMatchObject({ status: 403 });
    const reader = z
      .object({ token: z.string() })
      .parse((await call("POST", "/api/v1/tokens", { token: operatorToken, body: { name: "sync-reader", readOnly: true } })).body);
    expect(await call("POST", `/api/v1/vms/${id}/sync`, { token: reader.token, body: sync })).toMatchObject({ status: 403 });
    const adminVm = z
      .object({ id: z.string() })
      .parse((await call("POST", "/api/v1/vms", { token: adminToken, body: { name: "rest-sync-admin", imageId, cpus: 1, memoryMiB: 256 } })).body);
    expect(await call("POST", `/api/v1/vms/${adminVm.id}/sync`, { token: operatorToken, body: sync })).toMatchObject({
      status: 403,
      body: { message: "You can only change VMs you own; ask an admin or the VM's owner." },
    });

    for (const [body, message] of [
      [{ ...sync, from: "../../etc" }, /^from must name an existing file or directory under the sync root\.$/],
      [{ ...sync, from: "nothing-here" }, /^from must name an existing file or directory under the sync root\.$/],
      [{ ...sync, to: "srv" }, /^to must be an absolute path/],
      [{ ...sync, asRoot: "true" }, /^asRoot/],
      [{ ...sync, exclude: ["*.tmp"] }, /takes no field "exclude"; its fields are from, to, excludes, chown, asRoot\.$/],
    ] as const) {
      const refused = await call("POST", `/api/v1/vms/${id}/sync`, { token: operatorToken, body });
      expect(refused, JSON.stringify(body)).toMatchObject({ status: 400, body: { code: "BAD_REQUEST", message: expect.stringMatching(message) } });
      expect(JSON.stringify(refused.body)).not.toContain(t.env.stateDir);
    }
    // A failed copy says what failed, without the host's paths or the command line.
    fake.failNext.set("sync", new Error(`rsync: change_dir "${path.join(t.env.syncRoot, "site")}" failed: No such file or directory`));
    const failed = await call("POST", `/api/v1/vms/${id}/sync`, { token: operatorToken, body: sync });
    expect(failed).toMatchObject({
      status: 500,
      body: { message: expect.stringMatching(/^Syncing into VM "rest-sync" failed: rsync: change_dir "…\/site" failed/) },
    });
    for (const leak of [t.env.stateDir, t.env.syncRoot, "ssh -i"]) expect(JSON.stringify(failed.body)).not.toContain(leak);
  });

  it("answers only to Hangar's own host names, like every other path", async () => {
    expect(await call("GET", "/api/v1/vms", { token: adminToken, host: "evil.example" })).toEqual({
      status: 421,
      type: expect.any(String),
      body: WRONG_HOST_MESSAGE,
    });
    expect((await call("GET", "/api/openapi.json", { host: "evil.example" })).status).toBe(421);
  });
});
