/**
 * Acquire-to-SSH-ready from a pool of Suspended VMs vs a cold create + start of the same
 * image, in the same run; prints both medians and the speed-up (goal: at least 10x).
 *
 *   npx tsx bench/pool.ts [runs]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { adminCaller } from "./caller.ts";
import { createDb } from "../server/db.ts";
import { sshOptions } from "../server/driver/qemu/manager.ts";
import { envFor } from "../server/env.ts";
import { createHangar } from "../server/hangar.ts";
import { migrateDatabase } from "../server/migrate.ts";

const runs = Number(process.argv[2] ?? 5);
const guestDir = path.resolve(process.env.HANGAR_GUEST_DIR ?? "data/images/hangar-tiny");
const work = mkdtempSync(path.join(os.tmpdir(), "hangar-bench-pool-"));

async function sshReady(port: number, keyFile: string): Promise<void> {
  for (;;) {
    const r = await execa("ssh", [...sshOptions(port, keyFile), "--", "root@127.0.0.1", "true"], { reject: false });
    if (r.exitCode === 0) return;
    await sleep(50);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const stateDir = path.join(work, "state");
  const databaseUrl = `file:${path.join(stateDir, "hangar.db")}`;
  await migrateDatabase(databaseUrl);
  const env = envFor({ stateDir, databaseUrl, guestDir }, { NODE_ENV: "production" });
  const hangar = createHangar({ env, db: createDb(databaseUrl) });
  const api = await adminCaller(hangar);
  const image = await hangar.images.ensureBuiltinImage(guestDir);
  if (!image) throw new Error(`no tiny guest at ${guestDir}; run scripts/setup.sh`);
  console.log(`accelerator: ${await hangar.accel()}; ${runs} runs each`);

  const pool = await api.pool.create({ name: "bench", imageId: image.id, cpus: 1, memoryMiB: 256, size: 1, staging: "Suspended" });
  const acquireTimes: number[] = [];
  const coldTimes: number[] = [];
  const keyFile = path.join(work, "key");
  for (let run = 0; run < runs; run++) {
    // Measure each side on a quiet machine: the pool is full, nothing else boots.
    await hangar.pools.kick(pool.id);
    const started = performance.now();
    const got = await api.pool.acquire({ poolId: pool.id, timeoutSec: 120 });
    writeFileSync(keyFile, got.privateKey ?? "", { mode: 0o600 });
    await sshReady(got.sshPort, keyFile);
    acquireTimes.push(performance.now() - started);
    await api.pool.release({ vmId: got.vmId });
    await hangar.pools.kick(pool.id);

    const coldStarted = performance.now();
    const vm = await api.vm.create({ name: `cold-${run}`, imageId: image.id, cpus: 1, memoryMiB: 256 });
    const running = await api.vm.start({ id: vm.id });
    await sshReady(running.sshPort ?? 0, (await hangar.driverFor(vm.id).identity()).privateKeyFile);
    coldTimes.push(performance.now() - coldStarted);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
    console.log(`run ${run + 1}: acquire ${Math.round(acquireTimes[run] ?? 0)} ms, cold ${Math.round(coldTimes[run] ?? 0)} ms`);
  }
  const acquire = median(acquireTimes);
  const cold = median(coldTimes);
  console.log(`acquire-to-SSH median ${Math.round(acquire)} ms; cold create+start-to-SSH median ${Math.round(cold)} ms`);
  console.log(`speed-up cold/acquire: ${(cold / acquire).toFixed(1)}x (goal >= 10x)`);
  await api.pool.delete({ id: pool.id });
  await hangar.db.$disconnect();
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
