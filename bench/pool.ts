/**
 * Acquire-to-SSH-ready from a pool of Suspended VMs vs a cold create + start of the same
 * image, in the same run; prints both medians and the speed-up (goal: at least 10x).
 *
 *   npx tsx bench/pool.ts [runs]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { median, runBench, waitForSsh } from "./setup.ts";

const runs = Number(process.argv[2] ?? 5);

runBench("pool", async ({ work, hangar, api, imageId }) => {
  console.log(`accelerator: ${await hangar.accel()}; ${runs} runs each`);

  const pool = await api.pool.create({ name: "bench", imageId, cpus: 1, memoryMiB: 256, size: 1, staging: "Suspended" });
  const acquireTimes: number[] = [];
  const coldTimes: number[] = [];
  const keyFile = path.join(work, "key");
  for (let run = 0; run < runs; run++) {
    // Measure each side on a quiet machine: the pool is full, nothing else boots.
    await hangar.pools.kick(pool.id);
    const started = performance.now();
    const got = await api.pool.acquire({ poolId: pool.id, timeoutSec: 120 });
    writeFileSync(keyFile, got.privateKey ?? "", { mode: 0o600 });
    await waitForSsh(got.sshPort, keyFile);
    acquireTimes.push(performance.now() - started);
    await api.pool.release({ vmId: got.vmId });
    await hangar.pools.kick(pool.id);

    const coldStarted = performance.now();
    const vm = await api.vm.create({ name: `cold-${run}`, imageId, cpus: 1, memoryMiB: 256 });
    const running = await api.vm.start({ id: vm.id });
    await waitForSsh(running.sshPort ?? 0, (await hangar.driverFor(vm.id).identity()).privateKeyFile);
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
});

