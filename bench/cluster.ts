/**
 * vm.start to Running through another host (alpha forwards it to beta as a pg-boss job) vs
 * on the owning host (beta), on two real Hangar processes sharing one PostgreSQL database
 * (server/testing/cluster.ts), alternating in the same run. Prints both medians and the
 * ratio (goal: at most 1.2).
 *
 *   npx tsx bench/cluster.ts [runs]     (needs `npx next build` and PostgreSQL, as the tests do)
 */
import { startCluster } from "../server/testing/cluster.ts";
import { median } from "./setup.ts";

const runs = Number(process.argv[2] ?? 7);

const cluster = await startCluster({ names: ["alpha", "beta"] });
try {
  const alpha = cluster.host("alpha").api;
  const beta = cluster.host("beta");
  const image = (await alpha.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("no hangar-tiny image");
  const vm = await alpha.vm.create.mutate({ name: "bench-start", imageId: image.id, hostId: beta.id, cpus: 1, memoryMiB: 256 });

  const timeStart = async (through: typeof alpha) => {
    const started = performance.now();
    const running = await through.vm.start.mutate({ id: vm.id });
    const elapsed = performance.now() - started;
    if (running.state !== "Running") throw new Error(`the VM is ${running.state} after vm.start`);
    await beta.api.vm.stop.mutate({ id: vm.id, timeoutSec: 0 });
    return elapsed;
  };

  // One of each first, not counted: caches, connections, the queue's first fetch.
  await timeStart(beta.api);
  await timeStart(alpha);
  const local: number[] = [];
  const forwarded: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    local.push(await timeStart(beta.api));
    forwarded.push(await timeStart(alpha));
  }
  const ratio = median(forwarded) / median(local);
  console.log(`vm.start to Running, ${runs} runs each`);
  console.log(`  on the owning host (beta):     median ${median(local).toFixed(0)} ms  [${local.map((t) => t.toFixed(0)).join(", ")}]`);
  console.log(`  through another host (alpha):  median ${median(forwarded).toFixed(0)} ms  [${forwarded.map((t) => t.toFixed(0)).join(", ")}]`);
  console.log(`ratio ${ratio.toFixed(2)} (goal ≤ 1.2)`);
} finally {
  await cluster.close();
}
