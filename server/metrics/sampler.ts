/**
 * The sampler: every few seconds, what each running VM's qemu uses and what the host has.
 * - CPU: utime + stime of /proc/<pid>/stat between two samples, over the wall time.
 * - Memory: the qemu process's resident set (VmRSS of /proc/<pid>/status): the guest's RAM
 *   it has touched plus qemu's own. Beside it the guest's own view, where its balloon driver
 *   reports one (QMP guest-stats): total, and used = total - available.
 * - Disk: QMP query-blockstats counters, as rates.
 * - Network: only a bridge NIC has counters, its tap device's (/sys/class/net/<tap>/statistics,
 *   the tap found through the tun fd's fdinfo). qemu's user networking, which carries every
 *   VM's SSH and forwards and all of nat traffic, keeps no byte counters, so those VMs
 *   show no network figures.
 * - Host: /proc/stat, /proc/meminfo, statfs of the state directory, and what the VM rows
 *   allocate.
 * File reading is here; the arithmetic is in proc.ts.
 */
import { readdir, readFile, statfs } from "node:fs/promises";
import path from "node:path";
import type { BlockStats, GuestMemory } from "../driver/manager.ts";
import {
  countCpus,
  hostCpuPercent,
  parseHostStat,
  parseMeminfo,
  parseProcessStat,
  parseStatusRss,
  processCpuPercent,
  ratePerSecond,
  type HostCpu,
  type ProcessCpu,
} from "./proc.ts";

/** One VM's figures at one moment; null where nothing could be measured. */
export type VmPoint = {
  /** Milliseconds since the epoch. */
  at: number;
  /** Percentage of one core (two busy vCPUs: about 200). */
  cpuPercent: number | null;
  rssBytes: number | null;
  /** The guest's memory and what of it is in use, as the guest counts (its balloon driver). */
  guestMemTotalBytes: number | null;
  guestMemUsedBytes: number | null;
  diskReadBytesPerSec: number | null;
  diskWriteBytesPerSec: number | null;
  diskReadOpsPerSec: number | null;
  diskWriteOpsPerSec: number | null;
  /** Bytes the guest received and sent per second (bridge NICs only). */
  netRxBytesPerSec: number | null;
  netTxBytesPerSec: number | null;
};

/** Counters since the VM's qemu started (Prometheus counters). */
export interface VmTotals {
  cpuSeconds: number;
  disk: BlockStats | null;
  net: { rxBytes: number; txBytes: number } | null;
}

export interface VmSample {
  id: string;
  name: string;
  ownerId: string | null;
  point: VmPoint;
  totals: VmTotals;
}

export type HostPoint = {
  at: number;
  /** Percentage of all the host's CPUs together. */
  cpuPercent: number | null;
  cpus: number;
  memTotalBytes: number;
  memAvailableBytes: number;
  diskTotalBytes: number;
  diskFreeBytes: number;
  /** vCPUs and memory of the VMs that hold them (running, starting, paused…). */
  vcpusAllocated: number;
  memAllocatedBytes: number;
  /** VMs of this host by state. */
  vms: Record<string, number>;
};

export interface Sample {
  at: number;
  host: HostPoint;
  vms: VmSample[];
}

export interface RunningVm {
  id: string;
  name: string;
  ownerId: string | null;
  network: string;
}

export interface SamplerInventory {
  running: RunningVm[];
  byState: Record<string, number>;
  allocated: { cpus: number; memoryMiB: number };
}

/** What the sampler asks of a VM's driver. */
export interface VmProbe {
  /** The qemu's pid, 0 when it does not run. */
  pid(): Promise<number>;
  blockStats(): Promise<BlockStats>;
  guestMemory(): Promise<GuestMemory | null>;
}

export interface SamplerDeps {
  /** "/proc" (a fixture directory in tests and the benchmark). */
  procRoot: string;
  /** "/sys/class/net". */
  netRoot: string;
  stateDir: string;
  ticksPerSecond: number;
  inventory(): Promise<SamplerInventory>;
  probeFor(vmId: string): VmProbe;
  now?: () => number;
}

interface VmMemory {
  pid: number;
  at: number;
  cpu: ProcessCpu;
  disk: BlockStats | null;
  net: { rxBytes: number; txBytes: number } | null;
  /** The bridge NIC's tap device, once found (null: it has none). */
  tap?: string | null;
}

const NULL_RATES = { diskReadBytesPerSec: null, diskWriteBytesPerSec: null, diskReadOpsPerSec: null, diskWriteOpsPerSec: null };

export type Sampler = ReturnType<typeof createSampler>;

export function createSampler(deps: SamplerDeps) {
  const now = deps.now ?? Date.now;
  const memory = new Map<string, VmMemory>();
  let hostBefore: HostCpu | undefined;

  const read = (file: string) => readFile(file, "utf8");

  /** The tap device behind a tun fd of `pid` (fdinfo's "iff:" line), or null. */
  async function findTap(pid: number): Promise<string | null> {
    const fdDir = path.join(deps.procRoot, String(pid), "fdinfo");
    const fds = await readdir(fdDir).catch(() => [] as string[]);
    for (const fd of fds) {
      const info = await read(path.join(fdDir, fd)).catch(() => "");
      const match = /^iff:\s+(\S+)$/m.exec(info);
      if (match?.[1]) return match[1];
    }
    return null;
  }

  async function tapCounters(tap: string) {
    const dir = path.join(deps.netRoot, tap, "statistics");
    const [rx, tx] = await Promise.all([read(path.join(dir, "rx_bytes")), read(path.join(dir, "tx_bytes"))]);
    // The tap's receive is what the guest sent, and the other way round.
    return { rxBytes: Number(tx), txBytes: Number(rx) };
  }

  async function sampleVm(vm: RunningVm): Promise<VmSample | undefined> {
    const probe = deps.probeFor(vm.id);
    const pid = await probe.pid().catch(() => 0);
    if (pid === 0) {
      memory.delete(vm.id);
      return undefined;
    }
    const at = now();
    const procDir = path.join(deps.procRoot, String(pid));
    const [statText, statusText, [disk, guest]] = await Promise.all([
      read(path.join(procDir, "stat")).catch(() => undefined),
      read(path.join(procDir, "status")).catch(() => undefined),
      // One after the other: qemu serves one QMP client at a time.
      probe
        .blockStats()
        .catch(() => null)
        .then(async (stats) => [stats, await probe.guestMemory().catch(() => null)] as const),
    ]);
    const cpu = statText === undefined ? undefined : parseProcessStat(statText);
    if (!cpu) return undefined;
    let before = memory.get(vm.id);
    // Another pid is another qemu: its counters started again.
    if (before && before.pid !== pid) before = undefined;
    let tap = before?.tap;
    if (vm.network === "bridge" && tap === undefined) tap = await findTap(pid);
    const net = tap ? await tapCounters(tap).catch(() => null) : null;
    memory.set(vm.id, { pid, at, cpu, disk, net, tap: vm.network === "bridge" ? tap : null });

    const elapsed = before ? at - before.at : 0;
    const rate = (a: number | undefined, b: number | undefined) =>
      before && a !== undefined && b !== undefined ? (ratePerSecond(a, b, elapsed) ?? null) : null;
    const point: VmPoint = {
      at,
      cpuPercent: before ? (processCpuPercent(before.cpu, cpu, elapsed, deps.ticksPerSecond) ?? null) : null,
      rssBytes: statusText === undefined ? null : (parseStatusRss(statusText) ?? null),
      guestMemTotalBytes: guest?.totalBytes ?? null,
      guestMemUsedBytes: guest ? guest.totalBytes - guest.availableBytes : null,
      ...(disk && before?.disk
        ? {
            diskReadBytesPerSec: rate(before.disk.readBytes, disk.readBytes),
            diskWriteBytesPerSec: rate(before.disk.writeBytes, disk.writeBytes),
            diskReadOpsPerSec: rate(before.disk.readOps, disk.readOps),
            diskWriteOpsPerSec: rate(before.disk.writeOps, disk.writeOps),
          }
        : NULL_RATES),
      netRxBytesPerSec: net ? rate(before?.net?.rxBytes, net.rxBytes) : null,
      netTxBytesPerSec: net ? rate(before?.net?.txBytes, net.txBytes) : null,
    };
    return { id: vm.id, name: vm.name, ownerId: vm.ownerId, point, totals: { cpuSeconds: cpu.ticks / deps.ticksPerSecond, disk, net } };
  }

  async function sampleHost(inventory: SamplerInventory, at: number): Promise<HostPoint> {
    const [statText, meminfoText, fs] = await Promise.all([
      read(path.join(deps.procRoot, "stat")),
      read(path.join(deps.procRoot, "meminfo")),
      statfs(deps.stateDir).catch(() => undefined),
    ]);
    const cpu = parseHostStat(statText);
    const mem = parseMeminfo(meminfoText);
    const cpuPercent = cpu && hostBefore ? (hostCpuPercent(hostBefore, cpu) ?? null) : null;
    hostBefore = cpu;
    return {
      at,
      cpuPercent,
      cpus: countCpus(statText),
      memTotalBytes: mem?.totalBytes ?? 0,
      memAvailableBytes: mem?.availableBytes ?? 0,
      diskTotalBytes: fs ? fs.blocks * fs.bsize : 0,
      diskFreeBytes: fs ? fs.bavail * fs.bsize : 0,
      vcpusAllocated: inventory.allocated.cpus,
      memAllocatedBytes: inventory.allocated.memoryMiB * 1024 * 1024,
      vms: inventory.byState,
    };
  }

  /** One sample of the host and every running VM. */
  async function sample(): Promise<Sample> {
    const inventory = await deps.inventory();
    const running = new Set(inventory.running.map((vm) => vm.id));
    for (const id of memory.keys()) if (!running.has(id)) memory.delete(id);
    const at = now();
    const [host, vms] = await Promise.all([sampleHost(inventory, at), Promise.all(inventory.running.map(sampleVm))]);
    return { at, host, vms: vms.filter((vm): vm is VmSample => vm !== undefined) };
  }

  return { sample };
}
