/**
 * The sampler's cost with 50 VMs: each has a fake /proc/<pid> (stat and status, its CPU
 * ticks moving between samples) and a fake QMP socket answering query-blockstats, served
 * by a child process so that only the sampler's own work is counted here. Measures the CPU
 * time (user + system, this process) per sample and prints it as a percentage of one core
 * at the sampling interval (goal: at most 1 %), next to the same sampler with no VM in the
 * same run (the host figures alone).
 *
 *   npx tsx bench/metrics.ts [samples] [interval-seconds]
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { queryBlockStats } from "../server/driver/qemu/blockstats.ts";
import { createSampler, type RunningVm } from "../server/metrics/sampler.ts";

const SAMPLES = Number(process.argv[2] ?? 40);
const INTERVAL_SEC = Number(process.argv[3] ?? 5);
const VMS = 50;

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-bench-metrics-"));
const proc = path.join(work, "proc");
const sockets = path.join(work, "qmp");
mkdirSync(sockets);
mkdirSync(proc);
copyFileSync("/proc/stat", path.join(proc, "stat"));
copyFileSync("/proc/meminfo", path.join(proc, "meminfo"));

const vms: RunningVm[] = Array.from({ length: VMS }, (_, i) => ({ id: `vm${i}`, name: `bench-${i}`, ownerId: null, network: "nat" }));
const pidOf = (i: number) => 100_000 + i;

function writeProc(i: number, ticks: number): void {
  const dir = path.join(proc, String(pidOf(i)));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "stat"), `${pidOf(i)} (qemu-system-x86) S 1 1 1 0 -1 0 0 0 0 0 ${ticks} ${ticks >> 2} 0 0 20 0 3 0 5000 1073741824 65536 0\n`);
  writeFileSync(path.join(dir, "status"), `Name:\tqemu-system-x86\nVmRSS:\t  ${200_000 + i} kB\nThreads:\t3\n`);
}

// A QMP server per VM, like qemu's: greeting, capabilities, query-blockstats with counters that grow.
const fakeQmp = `
const net = require("node:net");
const path = require("node:path");
const [dir, count] = process.argv.slice(1);
let served = 0;
for (let i = 0; i < Number(count); i++) {
  net.createServer((socket) => {
    socket.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + "\\n");
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\\n")) >= 0) {
        const message = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        served += 1;
        const ret = message.execute === "query-blockstats"
          ? [{ device: "", qdev: "disk0", stats: { rd_bytes: served * 4096, wr_bytes: served * 512, rd_operations: served, wr_operations: served } }]
          : {};
        socket.write(JSON.stringify({ return: ret, id: message.id }) + "\\n");
      }
    });
    socket.on("error", () => {});
  }).listen(path.join(dir, i + ".sock"));
}
process.stdout.write("ready\\n");
`;

async function main(): Promise<void> {
  const child = execa("node", ["-e", fakeQmp, sockets, String(VMS)], { buffer: false });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.catch(reject);
  });
  try {
    let ticks = 1000;
    for (let i = 0; i < VMS; i++) writeProc(i, ticks);
    const makeSampler = (running: RunningVm[]) =>
      createSampler({
        procRoot: proc,
        netRoot: path.join(work, "net"),
        stateDir: work,
        ticksPerSecond: 100,
        inventory: async () => ({ running, byState: { Running: running.length }, allocated: { cpus: running.length, memoryMiB: running.length * 256 } }),
        probeFor: (vmId) => {
          const i = Number(vmId.slice(2));
          return { pid: async () => pidOf(i), blockStats: () => queryBlockStats(path.join(sockets, `${i}.sock`)), guestMemory: async () => null };
        },
      });

    /** CPU microseconds per sample, over SAMPLES samples (after one to warm up). */
    async function cost(running: RunningVm[]): Promise<number> {
      const sampler = makeSampler(running);
      await sampler.sample();
      let used = 0;
      for (let n = 0; n < SAMPLES; n++) {
        ticks += 250;
        for (let i = 0; i < running.length; i++) writeProc(i, ticks);
        // Let the writes and the child settle: only the sample itself is measured.
        await sleep(20);
        const before = process.cpuUsage();
        const sample = await sampler.sample();
        const delta = process.cpuUsage(before);
        used += delta.user + delta.system;
        if (sample.vms.length !== running.length) throw new Error(`sampled ${sample.vms.length} of ${running.length} VMs`);
        if (running.length > 0 && sample.vms.some((vm) => vm.point.cpuPercent === null || vm.point.diskReadBytesPerSec === null))
          throw new Error("a VM sample lacks figures");
      }
      return used / SAMPLES;
    }

    const baseline = await cost([]);
    const full = await cost(vms);
    const percent = (micros: number) => (micros / (INTERVAL_SEC * 1e6)) * 100;
    console.log(
      `sampler, host only:   ${(baseline / 1000).toFixed(2)} ms CPU per sample = ${percent(baseline).toFixed(3)} % of one core every ${INTERVAL_SEC} s`,
    );
    console.log(`sampler, ${VMS} VMs:     ${(full / 1000).toFixed(2)} ms CPU per sample = ${percent(full).toFixed(3)} % of one core every ${INTERVAL_SEC} s`);
    console.log(`per VM:               ${((full - baseline) / VMS / 1000).toFixed(3)} ms CPU per sample`);
    console.log(
      `ratio to the goal (1 % of one core): ${(percent(full) / 1).toFixed(2)} (${percent(full) <= 1 ? "within" : "over"} the goal); ${VMS} VMs vs host only: ${(full / baseline).toFixed(1)}x`,
    );
  } finally {
    child.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
