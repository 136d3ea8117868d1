/**
 * Idle server CPU: what this process spends with nothing happening, its reconciler loop and
 * host heartbeat running as main.ts runs them, with no VM rows and then with 1,000 Stopped
 * rows (inserted through Prisma, no qemu). Prints both as a share of one core and their ratio
 * (goal: at most 1.2x), and, for reference, the same 1,000 rows with a full pass (every row,
 * every pid file) at each tick, as the loop did before.
 *
 *   npx tsx bench/idle.ts [seconds-per-side]
 */
import { setTimeout as sleep } from "node:timers/promises";
import { runBench } from "./setup.ts";

const seconds = Number(process.argv[2] ?? 20);
const ROWS = 1000;

/** Share of one core this process used over `seconds` while `work` ran. */
async function idleCpu(start: () => () => void): Promise<number> {
  const stop = start();
  // The loop's first pass reads every row (start-up); measure after it.
  await sleep(1000);
  const cpu = process.cpuUsage();
  const wall = performance.now();
  await sleep(seconds * 1000);
  const used = process.cpuUsage(cpu);
  const elapsedMs = performance.now() - wall;
  stop();
  return (used.user + used.system) / 1000 / elapsedMs;
}

runBench("idle", async ({ hangar, imageId }) => {
  const interval = hangar.env.HANGAR_RECONCILE_MS;
  const asMain = () => {
    const stopLoop = hangar.reconciler.startLoop(interval);
    const stopBeat = hangar.hosts.startHeartbeat({ onLost: () => undefined, onBack: () => undefined });
    return () => {
      stopLoop();
      stopBeat();
    };
  };
  console.log(`reconciler every ${interval} ms, ${seconds} s a side`);
  const none = await idleCpu(asMain);
  console.log(`no VM rows:                 ${(none * 100).toFixed(2)} % of a core`);

  const hostId = await hangar.lifecycle.hostId();
  await hangar.db.vm.createMany({
    data: Array.from({ length: ROWS }, (_, i) => ({ name: `idle-${i}`, imageId, cpus: 1, memoryMiB: 256, state: "Stopped", hostId })),
  });
  const stopped = await idleCpu(asMain);
  console.log(`${ROWS} Stopped rows:          ${(stopped * 100).toFixed(2)} % of a core`);

  const fullPasses = await idleCpu(() => {
    const stopBeat = hangar.hosts.startHeartbeat({ onLost: () => undefined, onBack: () => undefined });
    let stopped = false;
    void (async () => {
      while (!stopped) {
        await hangar.reconciler.reconcileAll();
        await sleep(interval);
      }
    })();
    return () => {
      stopped = true;
      stopBeat();
    };
  });
  console.log(`${ROWS} rows, full pass a tick: ${(fullPasses * 100).toFixed(2)} % of a core (the loop before)`);
  console.log(`ratio ${ROWS} Stopped rows / none: ${(stopped / none).toFixed(2)}x (goal <= 1.2x); full passes would be ${(fullPasses / none).toFixed(2)}x`);
  await hangar.db.vm.deleteMany({ where: { name: { startsWith: "idle-" } } });
});
