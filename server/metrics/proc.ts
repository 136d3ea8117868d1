/**
 * Pure parsing and arithmetic for the sampler: the text of /proc files in, numbers out.
 * No I/O here, so the arithmetic is tested against fixture files.
 */

/** CPU time a process has used, in clock ticks (utime + stime of /proc/<pid>/stat). */
export interface ProcessCpu {
  ticks: number;
}

/**
 * /proc/<pid>/stat: fields after the command name, which is in parentheses and may itself
 * hold spaces and parentheses, so the line is split after the last ")".
 */
export function parseProcessStat(text: string): ProcessCpu | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Field 3 (state) is the first after the name; utime is field 14, stime field 15.
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { ticks: utime + stime };
}

/** The resident set size in bytes from /proc/<pid>/status (VmRSS, in kB). */
export function parseStatusRss(text: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return match?.[1] ? Number(match[1]) * 1024 : undefined;
}

/** Host-wide CPU time in ticks from the first line of /proc/stat. */
export interface HostCpu {
  /** Ticks spent idle or waiting for I/O. */
  idle: number;
  /** All ticks (guest time is already inside user and nice, so it is not added again). */
  total: number;
}

export function parseHostStat(text: string): HostCpu | undefined {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const values = [user, nice, system, idle, iowait, irq, softirq, steal];
  if (values.some((v) => !Number.isFinite(v))) return undefined;
  return { idle: idle + iowait, total: values.reduce((a, b) => a + b, 0) };
}

/** The number of CPUs /proc/stat lists (cpu0, cpu1…). */
export function countCpus(text: string): number {
  return text.split("\n").filter((l) => /^cpu\d+ /.test(l)).length;
}

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
}

/** MemTotal and MemAvailable of /proc/meminfo (kB). */
export function parseMeminfo(text: string): HostMemory | undefined {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, "m").exec(text);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  };
  const totalBytes = field("MemTotal");
  const availableBytes = field("MemAvailable");
  if (totalBytes === undefined || availableBytes === undefined) return undefined;
  return { totalBytes, availableBytes };
}

/**
 * CPU use of a process between two readings, as a percentage of one core (as top shows it:
 * a guest keeping two vCPUs busy is near 200). Undefined for a first reading or a clock
 * that did not move.
 */
export function processCpuPercent(before: ProcessCpu, after: ProcessCpu, elapsedMs: number, ticksPerSecond: number): number | undefined {
  if (elapsedMs <= 0 || after.ticks < before.ticks) return undefined;
  return ((after.ticks - before.ticks) / ticksPerSecond / (elapsedMs / 1000)) * 100;
}

/** Host CPU busy between two readings, as a percentage of all its CPUs together. */
export function hostCpuPercent(before: HostCpu, after: HostCpu): number | undefined {
  const total = after.total - before.total;
  if (total <= 0) return undefined;
  const busy = total - (after.idle - before.idle);
  return Math.min(100, Math.max(0, (busy / total) * 100));
}

/**
 * The rate of a counter per second between two readings. Undefined when the counter went
 * back (qemu restarted and counts from zero again) or no time passed.
 */
export function ratePerSecond(before: number, after: number, elapsedMs: number): number | undefined {
  if (elapsedMs <= 0 || after < before) return undefined;
  return (after - before) / (elapsedMs / 1000);
}
