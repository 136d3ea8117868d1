/**
 * vm.list on an inventory of 1,000 VMs: 50 concurrent clients calling the tRPC API over
 * HTTP with an API token, against the same query run directly through Prisma in the same
 * run. Prints p50, p99 and requests per second of both, and the overhead ratio
 * (goals: p50 under 20 ms, overhead at most 2x).
 *
 *   npx tsx bench/api.ts [seconds-per-side]      (DATABASE_URL=postgres://… for PostgreSQL)
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createTrpcHandler } from "../server/api/http.ts";
import { createToken } from "../server/auth/tokens.ts";
import { runBench } from "./setup.ts";

const seconds = Number(process.argv[2] ?? 5);
const CLIENTS = 50;
const VMS = 1000;

interface Run {
  latencies: number[];
  elapsedMs: number;
}

/** `CLIENTS` loops calling `once` back to back for `seconds`. */
async function load(once: () => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await once();
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, elapsedMs: performance.now() - started };
}

function summary(name: string, run: Run) {
  const sorted = [...run.latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const rps = (run.latencies.length / run.elapsedMs) * 1000;
  console.log(`${name.padEnd(16)} p50 ${at(0.5).toFixed(1)} ms  p99 ${at(0.99).toFixed(1)} ms  ${rps.toFixed(0)} req/s`);
  return { p50: at(0.5), rps };
}

runBench("api", async ({ hangar, imageId }) => {
  const { db } = hangar;
  const hostId = await hangar.lifecycle.hostId();
  const user = await db.user.create({ data: { id: randomUUID(), email: `bench-${Date.now()}@hangar.local`, name: "bench", role: "admin" } });
  await db.vm.createMany({
    data: Array.from({ length: VMS }, (_, i) => ({
      name: `bench-${i}-${Date.now()}`, imageId, cpus: 1, memoryMiB: 256, state: i % 3 ? "Stopped" : "Running", sshPort: 20000 + i, ownerId: user.id, hostId,
    })),
  });
  const { token } = await createToken(db, user.id, { name: "bench" });

  const server = http.createServer(createTrpcHandler(hangar));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/trpc/vm.list`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const callApi = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`vm.list answered ${res.statusCode}`));
          res.resume();
          res.on("end", resolve);
        })
        .on("error", reject);
    });
  const include = { image: { select: { id: true, name: true } }, ports: true, owner: { select: { id: true, email: true } }, host: { select: { id: true, name: true } } };
  const callPrisma = async () => {
    await db.vm.findMany({ include, orderBy: { createdAt: "asc" } });
  };

  await callApi();
  console.log(`${VMS} VMs, ${CLIENTS} concurrent clients, ${seconds} s a side, ${hangar.env.databaseUrl.split(":")[0]}`);
  const direct = summary("prisma direct", await load(callPrisma));
  const api = summary("tRPC vm.list", await load(callApi));
  console.log(`overhead p50 ${(api.p50 / direct.p50).toFixed(2)}x, throughput ${(direct.rps / api.rps).toFixed(2)}x (goal <= 2x; p50 goal < 20 ms)`);
  server.close();
  agent.destroy();
  await db.vm.deleteMany({ where: { name: { startsWith: "bench-" } } });
});

