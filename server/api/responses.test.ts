// tRPC over HTTP: compressed answers, and vm.list GETs with an ETag a poller gets 304 for
// until something changes.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../auth/tokens.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { acceptedEncoding } from "./responses.ts";
import { createTrpcHandler } from "./http.ts";

let t: TestHangar;
let server: http.Server;
let base: string;
let token: string;
let imageId: string;

beforeAll(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
  await t.hangar.pools.close();
  const user = await t.hangar.db.user.create({ data: { id: randomUUID(), email: "poller@test.hangar", name: "poller", role: "viewer" } });
  token = (await createToken(t.hangar.db, user.id, { name: "poller" })).token;
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
  const hostId = await t.hangar.lifecycle.hostId();
  await t.hangar.db.vm.createMany({
    data: Array.from({ length: 200 }, (_, i) => ({ name: `row-${i}`, imageId, cpus: 1, memoryMiB: 128, state: "Stopped", hostId })),
  });
  server = http.createServer(createTrpcHandler(t.hangar));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/trpc/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await t.cleanup();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
}

function decoded(answer: Answer): unknown {
  const encoding = answer.headers["content-encoding"];
  const raw = encoding === "br" ? brotliDecompressSync(answer.body) : encoding === "gzip" ? gunzipSync(answer.body) : answer.body;
  return JSON.parse(raw.toString("utf8"));
}

const listPath = (input: unknown, batch = false) => {
  const encoded = encodeURIComponent(JSON.stringify(batch ? { 0: superjson.serialize(input) } : superjson.serialize(input)));
  return `vm.list?${batch ? "batch=1&" : ""}input=${encoded}`;
};

describe("tRPC over HTTP", () => {
  it("picks br before gzip and leaves out what the client refuses", () => {
    expect(acceptedEncoding("gzip, deflate, br")).toBe("br");
    expect(acceptedEncoding("gzip, br;q=0")).toBe("gzip");
    expect(acceptedEncoding("identity")).toBeUndefined();
    expect(acceptedEncoding(undefined)).toBeUndefined();
    expect(acceptedEncoding("*")).toBe("br");
  });

  it("compresses vm.list and other JSON answers for clients that accept it, and not for others", async () => {
    const plain = await get("vm.list");
    expect(plain.status).toBe(200);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    const brotli = await get("vm.list", { "accept-encoding": "br" });
    expect(brotli.headers["content-encoding"]).toBe("br");
    expect(brotli.body.length).toBeLessThan(plain.body.length / 4);
    expect(decoded(brotli)).toEqual(decoded(plain));
    const gzipped = await get("vm.list", { "accept-encoding": "gzip" });
    expect(gzipped.headers["content-encoding"]).toBe("gzip");
    expect(decoded(gzipped)).toEqual(decoded(plain));
    // Another query, through tRPC's own handler: events of a VM made for it.
    const admin = await callerFor(t.hangar, "admin");
    const vm = await admin.vm.create({ name: "noisy", imageId, cpus: 1, memoryMiB: 128, userData: "x".repeat(4000) });
    const detail = await get(`vm.get?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ id: vm.id })))}`, { "accept-encoding": "gzip" });
    expect(detail.status).toBe(200);
    expect(detail.headers["content-encoding"]).toBe("gzip");
    expect(JSON.stringify(decoded(detail))).toContain("noisy");
  });

  it("answers a poller's If-None-Match with 304 until a VM changes, then with the new list", async () => {
    const path = listPath({ sort: "name", limit: 5 });
    const first = await get(path);
    const etag = first.headers.etag ?? "";
    expect(etag).toMatch(/^".+"$/);
    const again = await get(path, { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    // The batched form a browser sends answers alike, with its own tag.
    const batched = await get(listPath({ sort: "name", limit: 5 }, true));
    expect(batched.status).toBe(200);
    expect(Array.isArray(decoded(batched))).toBe(true);
    expect(batched.headers.etag).not.toBe(etag);
    const admin = await callerFor(t.hangar, "admin");
    await admin.vm.create({ name: "a-first", imageId, cpus: 1, memoryMiB: 128 });
    const changed = await get(path, { "if-none-match": etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    expect(JSON.stringify(decoded(changed))).toContain("a-first");
  });

  it("answers refused and bad calls as tRPC does", async () => {
    const anonymous = await new Promise<number>((resolve, reject) => {
      http
        .get(`${base}vm.list`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", reject);
    });
    expect(anonymous).toBe(401);
    const bad = await get(listPath({ limit: 0 }));
    expect(bad.status).toBe(400);
    expect(JSON.stringify(decoded(bad))).toContain("limit must be at least 1");
    const badCursor = await get(listPath({ cursor: "abc" }));
    expect(badCursor.status).toBe(400);
    expect(JSON.stringify(decoded(badCursor))).toContain("not a cursor");
  });
});
