/**
 * Acquire-to-SSH from a pool of each staging (Running, Paused, Suspended, Stopped) side by
 * side, against a cold create + start of the same image, in the same run. Prints the
 * medians, each staging's speed-up over cold, and Paused against Running (goals: Paused at
 * most 1.1x Running, Suspended at least 10x faster than cold). For the Suspended side it
 * also splits the time into the acquire (the resume) and the login, and measures a
 * VM outside a pool (its memory saved into its disk) the same way, to show where the time goes.
 *
 *   npx tsx bench/pool.ts [runs] [stagings, comma-separated]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { STAGING_STATES, type StagingState } from "../server/pool/pool.ts";
import { median, runBench, untilQuiet, waitForSsh } from "./setup.ts";

const runs = Number(process.argv[2] ?? 5);
const stagings = (process.argv[3]?.split(",") ?? [...STAGING_STATES]).filter((s): s is StagingState => (STAGING_STATES as readonly string[]).includes(s));

runBench("pool", async ({ work, hangar, api, imageId }) => {
  console.log(`accelerator: ${await hangar.accel()}; ${runs} runs each; stagings ${stagings.join(", ")}`);
  const keyFile = path.join(work, "key");
  const times = new Map<StagingState | "cold", number[]>();
  const pools = new Map<StagingState, string>();
  for (const staging of stagings) {
    const pool = await api.pool.create({ name: `bench-${staging.toLowerCase()}`, imageId, cpus: 1, memoryMiB: 256, size: 1, staging });
    pools.set(staging, pool.id);
    await hangar.pools.kick(pool.id);
  }
  const record = (side: StagingState | "cold", ms: number) => times.set(side, [...(times.get(side) ?? []), ms]);
  /** Suspended acquires split in two: acquire returned (the resume), then the login. */
  const suspendedSplit = { acquire: [] as number[], login: [] as number[] };

  for (let run = 0; run < runs; run++) {
    const line: string[] = [];
    for (const staging of stagings) {
      const poolId = pools.get(staging) ?? "";
      // Measure each side on a quiet machine: every pool is full, nothing else boots.
      for (const id of pools.values()) await hangar.pools.kick(id);
      await untilQuiet();
      const started = performance.now();
      const got = await api.pool.acquire({ poolId, timeoutSec: 300 });
      const acquired = performance.now() - started;
      writeFileSync(keyFile, got.privateKey ?? "", { mode: 0o600 });
      await waitForSsh(got.sshPort, keyFile);
      const total = performance.now() - started;
      record(staging, total);
      if (staging === "Suspended") {
        suspendedSplit.acquire.push(acquired);
        suspendedSplit.login.push(total - acquired);
      }
      line.push(`${staging} ${Math.round(total)} ms (acquire ${Math.round(acquired)})`);
      await api.pool.release({ vmId: got.vmId });
    }
    for (const id of pools.values()) await hangar.pools.kick(id);
    await untilQuiet();

    const coldStarted = performance.now();
    const vm = await api.vm.create({ name: `cold-${run}`, imageId, cpus: 1, memoryMiB: 256 });
    const running = await api.vm.start({ id: vm.id });
    await waitForSsh(running.sshPort ?? 0, (await hangar.driverFor(vm.id).identity()).privateKeyFile);
    record("cold", performance.now() - coldStarted);
    line.push(`cold ${Math.round(performance.now() - coldStarted)} ms`);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
    console.log(`run ${run + 1}: ${line.join(", ")}`);
  }

  const cold = median(times.get("cold") ?? []);
  console.log(`\nacquire-to-SSH medians (cold create+start-to-SSH ${Math.round(cold)} ms):`);
  for (const staging of stagings) {
    const value = median(times.get(staging) ?? []);
    console.log(`  ${staging.padEnd(10)} ${String(Math.round(value)).padStart(6)} ms   ${(cold / value).toFixed(1)}x faster than cold`);
  }
  const paused = median(times.get("Paused") ?? []);
  const running = median(times.get("Running") ?? []);
  if (stagings.includes("Paused") && stagings.includes("Running")) console.log(`Paused / Running: ${(paused / running).toFixed(2)}x (goal <= 1.1x)`);
  for (const id of pools.values()) await api.pool.delete({ id });
  if (stagings.includes("Suspended")) {
    // Beside it, a VM outside a pool, whose suspend saves its memory into its disk: vm.start
    // (qemu starts and loads the saved state), then the guest's SSH answering a login.
    const vm = await api.vm.create({ name: "resume-probe", imageId, cpus: 1, memoryMiB: 256 });
    await api.vm.start({ id: vm.id });
    await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 300 });
    const key = (await hangar.driverFor(vm.id).identity()).privateKeyFile;
    const resumes: number[] = [];
    const logins: number[] = [];
    for (let run = 0; run < runs; run++) {
      await api.vm.suspend({ id: vm.id });
      await untilQuiet();
      const started = performance.now();
      const resumed = await api.vm.start({ id: vm.id });
      resumes.push(performance.now() - started);
      const loginStarted = performance.now();
      await waitForSsh(resumed.sshPort ?? 0, key);
      logins.push(performance.now() - loginStarted);
    }
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
    const suspended = median(times.get("Suspended") ?? []);
    console.log(`Suspended: ${(cold / suspended).toFixed(1)}x faster than cold (goal >= 10x)`);
    console.log(
      `  a pool member (memory kept in a file): acquire (the resume) median ${Math.round(median(suspendedSplit.acquire))} ms, then SSH login median ${Math.round(median(suspendedSplit.login))} ms`,
    );
    console.log(
      `  a VM outside a pool (memory saved in its disk): vm.start median ${Math.round(median(resumes))} ms, then SSH login median ${Math.round(median(logins))} ms`,
    );
  }
});
