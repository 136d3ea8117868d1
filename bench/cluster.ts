/**
 * Two real Hangar processes sharing one PostgreSQL database (server/testing/cluster.ts):
 *   - vm.start to Running through another host (alpha forwards it to beta as a pg-boss job)
 *     vs on the owning host (beta), alternating in the same run: both medians and the ratio
 *     (goal: at most 1.2);
 *   - event fan-out: each of beta's state changes, from its event's record to its arrival on
 *     a dashboard stream on alpha (LISTEN/NOTIFY, then alpha reads the row), beside its
 *     arrival on a stream on beta itself: p50 of each (goal: alpha's p50 under 200 ms).
 *
 *   npx tsx bench/cluster.ts [runs]     (needs `npx next build` and PostgreSQL, as the tests do)
 */
import { liveStream, startCluster } from "../server/testing/cluster.ts";
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
  const onAlpha = liveStream(cluster.host("alpha"), cluster.token);
  const onBeta = liveStream(beta, cluster.token);
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

  // Every recorded change of the runs (Starting, Running, Stopping, Stopped), on both streams.
  onAlpha.close();
  onBeta.close();
  const recorded = new Map(
    (await cluster.db.event.findMany({ where: { vmId: vm.id, toState: { not: null } }, select: { id: true, createdAt: true } })).map((event) => [
      event.id,
      event.createdAt.getTime(),
    ]),
  );
  const latencies = (stream: typeof onAlpha) =>
    stream.changes.flatMap((change) => {
      const at = recorded.get(change.eventId);
      return at === undefined ? [] : [change.receivedAt - at];
    });
  const remote = latencies(onAlpha);
  const own = latencies(onBeta);
  console.log(`event fan-out, ${remote.length} changes of beta's VM`);
  console.log(`  to a stream on beta itself:  p50 ${median(own).toFixed(0)} ms`);
  console.log(`  to a stream on alpha:        p50 ${median(remote).toFixed(0)} ms (goal < 200 ms)`);
  console.log(`ratio ${(median(remote) / Math.max(1, median(own))).toFixed(2)}`);
} finally {
  await cluster.close();
}
