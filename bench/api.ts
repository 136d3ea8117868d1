/**
 * vm.list on an inventory of 1,000 VMs (rows inserted through Prisma, no qemu): 50
 * concurrent clients calling the tRPC API over HTTP with an API token, against the same
 * query run directly through Prisma in the same run. Three calls: the first page (100 rows,
 * sorted by name), the full list (no input), and a poller of the first page sending its
 * ETag back (304). Prints p50, p99 and requests per second of each side and the ratios
 * (goals: p50 under 20 ms and at least 500 req/s for the first page and the full list).
 *
 *   npx tsx bench/api.ts [seconds-per-side]      (DATABASE_URL=postgres://… for PostgreSQL)
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import superjson from "superjson";
import { createTrpcHandler } from "../server/api/http.ts";
import { createToken } from "../server/auth/tokens.ts";
import { runBench } from "./setup.ts";

const seconds = Number(process.argv[2] ?? 5);
const CLIENTS = 50;
const VMS = 1000;
const PAGE = 100;

interface Run {
  latencies: number[];
  elapsedMs: number;
  bytes: number;
}

/** `CLIENTS` loops calling `once` back to back for `seconds`; `once` returns the bytes it received. */
async function load(once: () => Promise<number>): Promise<Run> {
  const latencies: number[] = [];
  let bytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        const got = await once();
        latencies.push(performance.now() - t);
        bytes += got;
      }
    }),
  );
  return { latencies, elapsedMs: performance.now() - started, bytes };
}

function summary(name: string, run: Run) {
  const sorted = [...run.latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const rps = (run.latencies.length / run.elapsedMs) * 1000;
  const perCall = run.bytes / Math.max(1, run.latencies.length);
  console.log(
    `${name.padEnd(30)} p50 ${at(0.5).toFixed(1).padStart(6)} ms  p99 ${at(0.99).toFixed(1).padStart(7)} ms  ${rps.toFixed(0).padStart(6)} req/s${perCall ? `  ${(perCall / 1024).toFixed(1)} KiB/answer` : ""}`,
  );
  return { p50: at(0.5), rps };
}

runBench("api", async ({ hangar, imageId }) => {
  const { db } = hangar;
  const hostId = await hangar.lifecycle.hostId();
  const user = await db.user.create({ data: { id: randomUUID(), email: `bench-${Date.now()}@hangar.local`, name: "bench", role: "admin" } });
  await db.vm.createMany({
    data: Array.from({ length: VMS }, (_, i) => ({
      name: `bench-${i}-${Date.now()}`,
      imageId,
      cpus: 1,
      memoryMiB: 256,
      userData: "#cloud-config\n" + "x".repeat(600),
      state: i % 3 ? "Stopped" : "Running",
      sshPort: 20000 + i,
      ownerId: user.id,
      hostId,
    })),
  });
  const { token } = await createToken(db, user.id, { name: "bench" });

  const server = http.createServer(createTrpcHandler(hangar));
  // Idle keep-alive sockets stay open while the Prisma side runs.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/trpc/vm.list`;
  const firstPageUrl = `${base}?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ sort: "name", limit: PAGE })))}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const callApi =
    (url: string, headers: Record<string, string> = {}, expect = 200) =>
    () =>
      new Promise<number>((resolve, reject) => {
        http
          .get(url, { agent, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
            if (res.statusCode !== expect) reject(new Error(`vm.list answered ${res.statusCode}`));
            let bytes = 0;
            res.on("data", (chunk: Buffer) => (bytes += chunk.length));
            res.on("end", () => resolve(bytes));
          })
          .on("error", reject);
      });
  const include = {
    image: { select: { id: true, name: true } },
    ports: true,
    owner: { select: { id: true, email: true } },
    host: { select: { id: true, name: true } },
  };
  const prismaFirstPage = async () => {
    await Promise.all([db.vm.findMany({ include, omit: { userData: true }, orderBy: [{ name: "asc" }, { id: "asc" }], take: PAGE }), db.vm.count()]);
    return 0;
  };
  const prismaFullList = async () => {
    await db.vm.findMany({ include, omit: { userData: true }, orderBy: { createdAt: "asc" } });
    return 0;
  };

  const etag = await new Promise<string>((resolve, reject) => {
    http
      .get(firstPageUrl, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        resolve(String(res.headers.etag ?? ""));
      })
      .on("error", reject);
  });
  await callApi(base)();
  console.log(`${VMS} VMs, ${CLIENTS} concurrent clients, ${seconds} s a side, ${hangar.env.databaseUrl.split(":")[0]}`);
  const directPage = summary(`prisma first page (${PAGE} + count)`, await load(prismaFirstPage));
  const apiPage = summary(`tRPC vm.list first page`, await load(callApi(firstPageUrl)));
  const apiPageBr = summary(`  same, Accept-Encoding: br`, await load(callApi(firstPageUrl, { "accept-encoding": "br" })));
  const poller = summary(`  same, If-None-Match (304)`, await load(callApi(firstPageUrl, { "if-none-match": etag }, 304)));
  const directAll = summary(`prisma full list (${VMS})`, await load(prismaFullList));
  const apiAll = summary(`tRPC vm.list full list`, await load(callApi(base)));
  const apiAllBr = summary(`  same, Accept-Encoding: br`, await load(callApi(base, { "accept-encoding": "br" })));
  console.log(
    `first page: p50 ${(apiPage.p50 / directPage.p50).toFixed(2)}x Prisma's, ${(apiPage.rps / directPage.rps).toFixed(2)}x its req/s (br ${apiPageBr.rps.toFixed(0)} req/s, 304 ${poller.rps.toFixed(0)} req/s)`,
  );
  console.log(
    `full list:  p50 ${(apiAll.p50 / directAll.p50).toFixed(2)}x Prisma's, ${(apiAll.rps / directAll.rps).toFixed(2)}x its req/s (br ${apiAllBr.rps.toFixed(0)} req/s)`,
  );
  console.log("goals: p50 < 20 ms and >= 500 req/s for the first page and the full list");
  server.close();
  agent.destroy();
  await db.vm.deleteMany({ where: { name: { startsWith: "bench-" } } });
});
