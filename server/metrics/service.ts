/**
 * Metrics of one Hangar process: the sampler's loop, the history it feeds, the live stream
 * of points (metrics.onVm), and the Prometheus registry behind /metrics (its own Registry,
 * never prom-client's global one, so two Hangars in one test process do not mix).
 */
import { EventEmitter, on } from "node:events";
import { execa } from "execa";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Db } from "../db.ts";
import type { BlockStats } from "../driver/manager.ts";
import { logger } from "../log.ts";
import { createHistory } from "./history.ts";
import { pointsOf, vmPointSchema } from "./points.ts";
import { createSampler, type Sampler, type HostPoint, type Sample, type SamplerInventory, type VmPoint, type VmProbe, type VmSample } from "./sampler.ts";

/**
 * How often the sampler reads the newest stored usage of VMs running on other hosts: their
 * hosts write a point a minute, so a fresher read would find the same one.
 */
const REMOTE_USAGE_REFRESH_MS = 30_000;

/** States in which a VM holds its vCPUs and memory on the host. */
const HOLDING = new Set(["Starting", "Running", "Stopping", "Suspending"]);

export interface MetricsDeps {
  db: Db;
  stateDir: string;
  intervalMs: number;
  hostId: () => Promise<string>;
  hostName: string;
  probeFor: (vmId: string) => VmProbe;
  /** Open terminals by kind. */
  terminalCounts: () => Record<string, number>;
  /** "/proc" and "/sys/class/net" unless a test points elsewhere. */
  procRoot?: string;
  netRoot?: string;
}

/** A VM's usage as the VM table shows it: the newest point, or null when none is known. */
export interface VmUsage {
  cpuPercent: number | null;
  rssMiB: number | null;
}

export type Metrics = ReturnType<typeof createMetrics>;

function usageOf(point: Pick<VmPoint, "cpuPercent" | "rssBytes">): VmUsage {
  return { cpuPercent: point.cpuPercent, rssMiB: point.rssBytes === null ? null : point.rssBytes / 1024 / 1024 };
}

/** The kernel's clock ticks per second (USER_HZ), for /proc/<pid>/stat. */
async function ticksPerSecond(): Promise<number> {
  const result = await execa("getconf", ["CLK_TCK"], { reject: false });
  const value = Number(result.stdout);
  return Number.isInteger(value) && value > 0 ? value : 100;
}

export function createMetrics(deps: MetricsDeps) {
  const { db } = deps;
  const history = createHistory({ db, intervalMs: deps.intervalMs });
  const live = new EventEmitter();
  live.setMaxListeners(0);
  let latest: Sample | undefined;
  /** The newest sample's VMs by id (vm.list looks each row up). */
  let latestById = new Map<string, VmSample>();
  /** Usage of VMs running on other hosts, from the minute their host stored last. */
  let remoteUsage = new Map<string, VmUsage>();
  let remoteReadAt = 0;

  async function inventory(): Promise<SamplerInventory> {
    const self = await deps.hostId();
    const vms = await db.vm.findMany({
      where: { OR: [{ hostId: self }, { hostId: null }] },
      select: { id: true, name: true, ownerId: true, network: true, state: true, cpus: true, memoryMiB: true },
    });
    const byState: Record<string, number> = {};
    const allocated = { cpus: 0, memoryMiB: 0 };
    for (const vm of vms) {
      byState[vm.state] = (byState[vm.state] ?? 0) + 1;
      if (HOLDING.has(vm.state)) {
        allocated.cpus += vm.cpus;
        allocated.memoryMiB += vm.memoryMiB;
      }
    }
    return { running: vms.filter((vm) => vm.state === "Running"), byState, allocated };
  }

  let sampler: Promise<Sampler> | undefined;
  const makeSampler = async () =>
    createSampler({
      procRoot: deps.procRoot ?? "/proc",
      netRoot: deps.netRoot ?? "/sys/class/net",
      stateDir: deps.stateDir,
      ticksPerSecond: await ticksPerSecond(),
      inventory,
      probeFor: deps.probeFor,
    });

  /**
   * Reads the newest stored point of each VM running on another host, at most every
   * REMOTE_USAGE_REFRESH_MS: the VM table shows those VMs' CPU and memory a minute late
   * rather than not at all. A failed read keeps the figures it had.
   */
  async function readRemoteUsage(hostId: string): Promise<void> {
    if (Date.now() - remoteReadAt < REMOTE_USAGE_REFRESH_MS) return;
    remoteReadAt = Date.now();
    try {
      const vms = await db.vm.findMany({ where: { hostId: { not: hostId }, state: "Running" }, select: { id: true } });
      const stored = await history.latestStored(
        "vm",
        vms.map((vm) => vm.id),
      );
      const usage = new Map<string, VmUsage>();
      for (const [id, point] of stored) {
        const [parsed] = pointsOf(vmPointSchema, [point]);
        if (parsed) usage.set(id, usageOf(parsed));
      }
      remoteUsage = usage;
    } catch (error) {
      logger.warn({ err: error }, "reading other hosts' VM usage failed");
    }
  }

  /** Takes one sample and feeds the history and the live stream. */
  async function tick(): Promise<Sample> {
    sampler ??= makeSampler();
    const sample = await (await sampler).sample();
    const hostId = await deps.hostId();
    await readRemoteUsage(hostId);
    history.add("host", hostId, sample.host);
    for (const vm of sample.vms) history.add("vm", vm.id, vm.point);
    latest = sample;
    latestById = new Map(sample.vms.map((vm) => [vm.id, vm]));
    live.emit("sample", sample);
    return sample;
  }

  /**
   * Samples every interval and writes finished minutes once a minute. Returns a stop
   * function, which writes what was sampled so far (the minute in progress too).
   */
  function start(): () => Promise<void> {
    let busy = false;
    let lastFlush = Date.now();
    const timer = setInterval(() => {
      // A slow sample (a QMP socket held by a savevm) is not stacked on.
      if (busy) return;
      busy = true;
      void tick()
        .then(async () => {
          if (Date.now() - lastFlush >= 60_000) {
            lastFlush = Date.now();
            await history.flush();
          }
        })
        .catch((error: unknown) => logger.warn({ err: error }, "metrics sample failed"))
        .finally(() => (busy = false));
    }, deps.intervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await history.flush({ unfinished: true });
    };
  }

  /** The newest usage of a VM, for the VM table: this host's from its last sample, another host's from its last stored minute. */
  function usage(vmId: string): VmUsage | null {
    const point = latestById.get(vmId)?.point;
    return point ? usageOf(point) : (remoteUsage.get(vmId) ?? null);
  }

  /** Every VM's usage this process knows, for the VM table's live columns (metrics.onUsage). */
  function usages(sample: Sample): { id: string; usage: VmUsage }[] {
    return [...sample.vms.map((vm) => ({ id: vm.id, usage: usageOf(vm.point) })), ...[...remoteUsage].map(([id, usage]) => ({ id, usage }))];
  }

  /** Every sample from now on, until `signal` ends it. */
  async function* samples(signal?: AbortSignal): AsyncGenerator<Sample> {
    for await (const [sample] of on(live, "sample", { signal })) yield sample as Sample;
  }

  /** The newest host point of this process. */
  function hostPoint(): HostPoint | undefined {
    return latest?.host;
  }

  // Prometheus

  const registry = new Registry();
  const vmLabels = ["id", "name", "owner", "host"] as const;
  const lifecycleSeconds: Histogram = new Histogram({
    name: "hangar_lifecycle_duration_seconds",
    help: "How long lifecycle actions took, by action and outcome.",
    labelNames: ["action", "outcome"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  const trpcSeconds: Histogram = new Histogram({
    name: "hangar_trpc_request_duration_seconds",
    help: "tRPC query and mutation latency by procedure and outcome.",
    labelNames: ["procedure", "type", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const poolAcquireSeconds: Histogram = new Histogram({
    name: "hangar_pool_acquire_duration_seconds",
    help: "How long pool.acquire took to hand out a VM, by pool and outcome.",
    labelNames: ["pool", "outcome"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  type Labelled = { labels: Record<(typeof vmLabels)[number], string>; vm: VmSample }[];
  let labelledFor: { sample: Sample | undefined; rows: Promise<Labelled> } | undefined;

  /** VM label values of the newest sample, owners' emails looked up once per sample (not per metric). */
  function labelled(): Promise<Labelled> {
    if (!labelledFor || labelledFor.sample !== latest) labelledFor = { sample: latest, rows: readLabels(latest) };
    return labelledFor.rows;
  }

  async function readLabels(sample: Sample | undefined): Promise<Labelled> {
    const vms = sample?.vms ?? [];
    const ownerIds = [...new Set(vms.flatMap((vm) => (vm.ownerId ? [vm.ownerId] : [])))];
    const owners = ownerIds.length ? await db.user.findMany({ where: { id: { in: ownerIds } }, select: { id: true, email: true } }) : [];
    const emailOf = new Map(owners.map((o) => [o.id, o.email]));
    return vms.map((vm) => ({ vm, labels: { id: vm.id, name: vm.name, owner: (vm.ownerId && emailOf.get(vm.ownerId)) || "", host: deps.hostName } }));
  }

  function vmGauge(name: string, help: string, value: (point: VmPoint) => number | null) {
    return new Gauge({
      name,
      help,
      labelNames: vmLabels,
      registers: [registry],
      async collect() {
        this.reset();
        for (const { vm, labels } of await labelled()) {
          const v = value(vm.point);
          if (v !== null) this.set(labels, v);
        }
      },
    });
  }

  function vmCounter(name: string, help: string, value: (vm: VmSample) => number | null) {
    return new Counter({
      name,
      help,
      labelNames: vmLabels,
      registers: [registry],
      async collect() {
        this.reset();
        for (const { vm, labels } of await labelled()) {
          const v = value(vm);
          if (v !== null) this.inc(labels, v);
        }
      },
    });
  }

  const disk = (field: keyof BlockStats) => (vm: VmSample) => vm.totals.disk?.[field] ?? null;
  vmGauge("hangar_vm_memory_rss_bytes", "Resident memory of the VM's qemu process.", (p) => p.rssBytes);
  vmGauge(
    "hangar_vm_guest_memory_bytes",
    "The guest's memory as its balloon driver reports it (guests without the driver: none).",
    (p) => p.guestMemTotalBytes,
  );
  vmGauge("hangar_vm_guest_memory_used_bytes", "Memory the guest uses: its total less what it reports available.", (p) => p.guestMemUsedBytes);
  vmGauge("hangar_vm_cpu_usage_ratio", "CPU use of the VM's qemu over the last sample, in cores (1 = one core busy).", (p) =>
    p.cpuPercent === null ? null : p.cpuPercent / 100,
  );
  vmCounter("hangar_vm_cpu_seconds_total", "CPU time the VM's qemu has used since it started.", (vm) => vm.totals.cpuSeconds);
  vmCounter("hangar_vm_disk_read_bytes_total", "Bytes the VM read from its drives since qemu started.", disk("readBytes"));
  vmCounter("hangar_vm_disk_written_bytes_total", "Bytes the VM wrote to its drives since qemu started.", disk("writeBytes"));
  vmCounter("hangar_vm_disk_reads_total", "Read operations on the VM's drives since qemu started.", disk("readOps"));
  vmCounter("hangar_vm_disk_writes_total", "Write operations on the VM's drives since qemu started.", disk("writeOps"));
  vmCounter(
    "hangar_vm_network_receive_bytes_total",
    "Bytes the VM received on its bridge NIC (user networking has no counters).",
    (vm) => vm.totals.net?.rxBytes ?? null,
  );
  vmCounter(
    "hangar_vm_network_transmit_bytes_total",
    "Bytes the VM sent on its bridge NIC (user networking has no counters).",
    (vm) => vm.totals.net?.txBytes ?? null,
  );

  function hostGauge(name: string, help: string, value: (host: HostPoint) => number | null) {
    return new Gauge({
      name,
      help,
      labelNames: ["host"] as const,
      registers: [registry],
      collect() {
        this.reset();
        const v = latest ? value(latest.host) : null;
        if (v !== null) this.set({ host: deps.hostName }, v);
      },
    });
  }
  hostGauge("hangar_host_cpu_usage_ratio", "Host CPU busy, 0 to 1 across all its CPUs.", (h) => (h.cpuPercent === null ? null : h.cpuPercent / 100));
  hostGauge("hangar_host_cpus", "CPUs of the host.", (h) => h.cpus);
  hostGauge("hangar_host_memory_total_bytes", "Memory of the host.", (h) => h.memTotalBytes);
  hostGauge("hangar_host_memory_available_bytes", "Memory the host has available (MemAvailable).", (h) => h.memAvailableBytes);
  hostGauge("hangar_host_state_dir_free_bytes", "Free space in the state directory's file system.", (h) => h.diskFreeBytes);
  hostGauge("hangar_host_state_dir_size_bytes", "Size of the state directory's file system.", (h) => h.diskTotalBytes);
  hostGauge("hangar_host_vcpus_allocated", "vCPUs of the VMs that hold them on this host.", (h) => h.vcpusAllocated);
  hostGauge("hangar_host_memory_allocated_bytes", "Memory of the VMs that hold it on this host.", (h) => h.memAllocatedBytes);
  new Gauge({
    name: "hangar_vms",
    help: "VMs of this host by state.",
    labelNames: ["host", "state"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(latest?.host.vms ?? {})) this.set({ host: deps.hostName, state }, count);
    },
  });
  new Gauge({
    name: "hangar_pool_members",
    help: "Members of each pool: its target size, and those waiting ready to hand out.",
    labelNames: ["pool", "kind"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const pools = await db.pool.findMany({
        select: { name: true, size: true, staging: true, vms: { select: { state: true, acquiredAt: true, readyState: true } } },
      });
      for (const pool of pools) {
        const ready = pool.vms.filter((vm) => !vm.acquiredAt && vm.state === pool.staging && (pool.staging !== "Running" || vm.readyState === "ready")).length;
        this.set({ pool: pool.name, kind: "size" }, pool.size);
        this.set({ pool: pool.name, kind: "ready" }, ready);
        this.set({ pool: pool.name, kind: "members" }, pool.vms.filter((vm) => !vm.acquiredAt).length);
      }
    },
  });
  new Gauge({
    name: "hangar_terminal_sessions",
    help: "Open terminal sessions by kind.",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, count] of Object.entries(deps.terminalCounts())) this.set({ kind }, count);
    },
  });

  /** Times `work` into `histogram` with an ok/error outcome. */
  async function timed<T>(histogram: Histogram, labels: Record<string, string>, work: () => Promise<T>): Promise<T> {
    const end = histogram.startTimer(labels);
    try {
      const result = await work();
      end({ outcome: "ok" });
      return result;
    } catch (error) {
      end({ outcome: "error" });
      throw error;
    }
  }

  return {
    history,
    tick,
    start,
    usage,
    usages,
    samples,
    hostPoint,
    registry,
    observeLifecycle: <T>(action: string, work: () => Promise<T>) => timed(lifecycleSeconds, { action }, work),
    /** Starts timing a tRPC call; the returned function ends it with its outcome. */
    timeRequest(procedure: string, type: string): (outcome: "ok" | "error") => void {
      const end = trpcSeconds.startTimer({ procedure, type });
      return (outcome) => void end({ outcome });
    },
    observeAcquire: <T>(pool: string, work: () => Promise<T>) => timed(poolAcquireSeconds, { pool }, work),
  };
}
