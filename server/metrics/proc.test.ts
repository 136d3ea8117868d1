// The sampler's arithmetic against fixture /proc files (taken from a real host's layout,
// figures chosen so the expected results can be worked out by hand).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { GuestMemory } from "../driver/manager.ts";
import { sumBlockStats } from "../driver/qemu/blockstats.ts";
import { parseGuestStats } from "../driver/qemu/guest-stats.ts";
import { countCpus, hostCpuPercent, parseHostStat, parseMeminfo, parseProcessStat, parseStatusRss, processCpuPercent, ratePerSecond } from "./proc.ts";
import { createSampler, type SamplerInventory } from "./sampler.ts";

const fixtures = path.join(import.meta.dirname, "fixtures", "proc");
const fixture = (name: string) => readFileSync(path.join(fixtures, name), "utf8");
const MiB = 1024 * 1024;
const work = mkdtempSync(path.join(os.tmpdir(), "hangar-proc-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("parsing /proc", () => {
  it("reads utime + stime of a process, whatever its name holds", () => {
    expect(parseProcessStat(fixture("4242/stat.0"))).toEqual({ ticks: 1250 });
    const odd = fixture("4242/stat.1").replace("(qemu-system-x86)", "(qemu (odd) name)");
    expect(parseProcessStat(odd)).toEqual({ ticks: 1750 });
    expect(parseProcessStat("garbage")).toBeUndefined();
  });

  it("reads the resident set in bytes", () => {
    expect(parseStatusRss(fixture("4242/status"))).toBe(262144 * 1024);
    expect(parseStatusRss("Name:\tzombie\n")).toBeUndefined();
  });

  it("reads the host's CPU ticks, idle including iowait, guest time not counted twice", () => {
    expect(parseHostStat(fixture("stat.0"))).toEqual({ idle: 80900, total: 94100 });
    expect(countCpus(fixture("stat.0"))).toBe(2);
  });

  it("reads total and available memory", () => {
    expect(parseMeminfo(fixture("meminfo"))).toEqual({ totalBytes: 8192000 * 1024, availableBytes: 4096000 * 1024 });
  });
});

describe("arithmetic", () => {
  it("CPU of a process is ticks over wall time, as a percentage of one core", () => {
    const before = parseProcessStat(fixture("4242/stat.0"));
    const after = parseProcessStat(fixture("4242/stat.1"));
    if (!before || !after) throw new Error("fixture unreadable");
    // 500 ticks at 100 Hz = 5 s of CPU in 10 s of wall time.
    expect(processCpuPercent(before, after, 10_000, 100)).toBeCloseTo(50, 6);
    // Two busy vCPUs: 5 s of CPU in 2.5 s.
    expect(processCpuPercent(before, after, 2_500, 100)).toBeCloseTo(200, 6);
    expect(processCpuPercent(after, before, 10_000, 100)).toBeUndefined();
    expect(processCpuPercent(before, after, 0, 100)).toBeUndefined();
  });

  it("host CPU is the busy share of all ticks between two readings", () => {
    const before = parseHostStat(fixture("stat.0"));
    const after = parseHostStat(fixture("stat.1"));
    if (!before || !after) throw new Error("fixture unreadable");
    // 1900 ticks passed, 1100 of them idle or iowait.
    expect(hostCpuPercent(before, after)).toBeCloseTo((800 / 1900) * 100, 6);
    expect(hostCpuPercent(after, after)).toBeUndefined();
  });

  it("rates per second, and no rate across a counter reset", () => {
    expect(ratePerSecond(1000, 6000, 5000)).toBe(1000);
    expect(ratePerSecond(6000, 10, 5000)).toBeUndefined();
  });

  it("sums query-blockstats over the drives, and refuses a reply of another shape", () => {
    const reply = [
      { device: "", qdev: "disk0", stats: { rd_bytes: 1000, wr_bytes: 200, rd_operations: 10, wr_operations: 2, flush_operations: 1 } },
      { device: "", qdev: "cd0", stats: { rd_bytes: 24, wr_bytes: 0, rd_operations: 1, wr_operations: 0 } },
    ];
    expect(sumBlockStats(reply)).toEqual({ readBytes: 1024, writeBytes: 200, readOps: 11, writeOps: 2 });
    expect(sumBlockStats({ stats: "no" })).toBeUndefined();
  });

  it("reads the guest's memory from a balloon's guest-stats, and nothing before the guest reported", () => {
    const stats = (s: Record<string, number>, lastUpdate = 1_796_000_000) => ({ "last-update": lastUpdate, stats: { "stat-swap-in": -1, ...s } });
    expect(parseGuestStats(stats({ "stat-total-memory": 240 * MiB, "stat-available-memory": 190 * MiB, "stat-free-memory": 150 * MiB }))).toEqual({
      totalBytes: 240 * MiB,
      availableBytes: 190 * MiB,
    });
    // A driver that does not send available memory: free stands in.
    expect(parseGuestStats(stats({ "stat-total-memory": 240 * MiB, "stat-available-memory": -1, "stat-free-memory": 150 * MiB }))).toEqual({
      totalBytes: 240 * MiB,
      availableBytes: 150 * MiB,
    });
    expect(parseGuestStats(stats({ "stat-total-memory": -1, "stat-free-memory": -1 }, 0))).toBeNull();
    expect(parseGuestStats(stats({ "stat-total-memory": -1, "stat-free-memory": 5 }))).toBeNull();
    expect(parseGuestStats({ error: "no balloon" })).toBeNull();
  });
});

describe("the sampler on a fixture /proc", () => {
  it("turns two readings into CPU, memory, disk rates and host figures", async () => {
    const proc = path.join(work, "proc");
    cpSync(fixtures, proc, { recursive: true });
    const setReading = (n: 0 | 1) => {
      writeFileSync(path.join(proc, "4242", "stat"), fixture(`4242/stat.${n}`));
      writeFileSync(path.join(proc, "stat"), fixture(`stat.${n}`));
    };
    let clock = 1_000_000;
    let disk = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
    let guest: GuestMemory | null = null;
    const inventory: SamplerInventory = {
      running: [{ id: "vm1", name: "one", ownerId: null, network: "nat" }],
      byState: { Running: 1, Stopped: 2 },
      allocated: { cpus: 2, memoryMiB: 512 },
    };
    const sampler = createSampler({
      procRoot: proc,
      netRoot: path.join(work, "net"),
      stateDir: work,
      ticksPerSecond: 100,
      inventory: async () => inventory,
      probeFor: () => ({ pid: async () => 4242, blockStats: async () => disk, guestMemory: async () => guest }),
      now: () => clock,
    });

    setReading(0);
    const first = await sampler.sample();
    expect(first.vms[0]?.point).toMatchObject({
      cpuPercent: null,
      rssBytes: 262144 * 1024,
      guestMemTotalBytes: null,
      guestMemUsedBytes: null,
      diskReadBytesPerSec: null,
      netRxBytesPerSec: null,
    });
    expect(first.host).toMatchObject({
      cpuPercent: null,
      cpus: 2,
      memTotalBytes: 8192000 * 1024,
      vcpusAllocated: 2,
      memAllocatedBytes: 512 * 1024 * 1024,
      vms: { Running: 1, Stopped: 2 },
    });
    expect(first.host.diskTotalBytes).toBeGreaterThan(0);

    setReading(1);
    clock += 10_000;
    disk = { readBytes: 10 * 4096, writeBytes: 20 * 4096, readOps: 10, writeOps: 40 };
    guest = { totalBytes: 240 * MiB, availableBytes: 190 * MiB };
    const second = await sampler.sample();
    const point = second.vms[0]?.point;
    expect(point?.cpuPercent).toBeCloseTo(50, 6);
    expect(point).toMatchObject({ diskReadBytesPerSec: 4096, diskWriteBytesPerSec: 8192, diskReadOpsPerSec: 1, diskWriteOpsPerSec: 4 });
    // The guest's own count: used is what it could not make available.
    expect(point).toMatchObject({ guestMemTotalBytes: 240 * MiB, guestMemUsedBytes: 50 * MiB });
    expect(second.vms[0]?.totals.cpuSeconds).toBe(17.5);
    expect(second.host.cpuPercent).toBeCloseTo((800 / 1900) * 100, 6);

    // A VM that stopped has no point; its memory is dropped.
    inventory.running = [];
    expect((await sampler.sample()).vms).toEqual([]);
  });

  it("finds a bridge NIC's tap through the tun fd and reports the guest's side of its counters", async () => {
    const proc = path.join(work, "proc-tap");
    cpSync(fixtures, proc, { recursive: true });
    writeFileSync(path.join(proc, "4242", "stat"), fixture("4242/stat.0"));
    writeFileSync(path.join(proc, "stat"), fixture("stat.0"));
    const fdinfo = path.join(proc, "4242", "fdinfo");
    const stats = path.join(work, "net", "tap7", "statistics");
    mkdirSync(fdinfo, { recursive: true });
    mkdirSync(stats, { recursive: true });
    writeFileSync(path.join(fdinfo, "3"), "pos:\t0\nflags:\t02\nmnt_id:\t15\n");
    writeFileSync(path.join(fdinfo, "9"), "pos:\t0\nflags:\t02004002\nmnt_id:\t26\niff:\ttap7\n");
    const counters = (rx: number, tx: number) => {
      writeFileSync(path.join(stats, "rx_bytes"), `${rx}\n`);
      writeFileSync(path.join(stats, "tx_bytes"), `${tx}\n`);
    };
    let clock = 0;
    const sampler = createSampler({
      procRoot: proc,
      netRoot: path.join(work, "net"),
      stateDir: work,
      ticksPerSecond: 100,
      inventory: async () => ({
        running: [{ id: "b", name: "bridged", ownerId: null, network: "bridge" }],
        byState: { Running: 1 },
        allocated: { cpus: 1, memoryMiB: 256 },
      }),
      probeFor: () => ({
        pid: async () => 4242,
        blockStats: async () => ({ readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 }),
        guestMemory: async () => null,
      }),
      now: () => clock,
    });
    counters(1000, 5000);
    await sampler.sample();
    counters(3000, 15000);
    clock += 2000;
    const point = (await sampler.sample()).vms[0]?.point;
    // The tap received 2000 bytes (the guest sent them) and sent 10000 (the guest received them).
    expect(point).toMatchObject({ netRxBytesPerSec: 5000, netTxBytesPerSec: 1000 });
  });
});
