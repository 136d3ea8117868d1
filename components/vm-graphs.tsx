"use client";
/**
 * A VM's live usage: the last hour (or 24 hours by the minute) from metrics.vm, then each new
 * point from metrics.onVm as the sampler takes it. CPU is in % of one core (two busy vCPUs
 * show about 200 %), memory is the qemu process's resident memory and, where the guest's balloon
 * driver reports it, what the guest itself counts as used; disk is bytes per second
 * read and written, network the bridge NIC's bytes per second (user networking has no counters).
 */
import { useQuery } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import type { inferRouterOutputs } from "@trpc/server";
import { useMemo, useState } from "react";
import type uPlot from "uplot";
import type { AppRouter } from "@/server/api/root.ts";
import { formatBytes } from "./format.ts";
import { UsageChart, type ChartSeries } from "./usage-chart.tsx";
import { useTRPC } from "./trpc.ts";

type VmPoint = inferRouterOutputs<AppRouter>["metrics"]["vm"]["points"][number];
type Range = "1h" | "24h";

const HOUR_MS = 3_600_000;
const KIB = 1024;
const MIB = 1024 * KIB;
const CPU: ChartSeries[] = [{ label: "CPU", color: "#2563eb" }];
const MEMORY: ChartSeries[] = [
  { label: "qemu resident", color: "#7c3aed" },
  { label: "Guest used", color: "#16a34a" },
];
const DISK: ChartSeries[] = [
  { label: "Read", color: "#059669" },
  { label: "Write", color: "#d97706" },
];
const NETWORK: ChartSeries[] = [
  { label: "Received", color: "#0891b2" },
  { label: "Sent", color: "#db2777" },
];
/** Each unit's label format and the least top of its y-axis. */
const PERCENT = { format: (v: number) => `${v.toFixed(0)} %`, floor: 5 };
const BYTES = { format: (v: number) => formatBytes(Math.round(v)), floor: MIB };
const BYTES_PER_SECOND = { format: (v: number) => `${formatBytes(Math.round(v))}/s`, floor: KIB };

function columns(points: VmPoint[], fields: (keyof Omit<VmPoint, "at">)[]): uPlot.AlignedData {
  return [points.map((p) => p.at / 1000), ...fields.map((field) => points.map((p) => p[field]))];
}

export function VmGraphs({ id, running }: { id: string; running: boolean }) {
  const trpc = useTRPC();
  const [range, setRange] = useState<Range>("1h");
  const history = useQuery(
    trpc.metrics.vm.queryOptions(
      { id, range },
      {
        // A VM on another host: its points come from there, asked for again at each sample.
        refetchInterval: (query) => (running && range === "1h" && query.state.data?.live === false ? query.state.data.intervalSec * 1000 : false),
      },
    ),
  );
  const [live, setLive] = useState<VmPoint[]>([]);
  useSubscription(
    trpc.metrics.onVm.subscriptionOptions(
      { id },
      {
        enabled: running && range === "1h" && history.data?.live === true,
        onStarted: () => setLive([]),
        onData: (point) => setLive((points) => [...points.filter((p) => p.at >= point.at - HOUR_MS), point]),
      },
    ),
  );

  const points = useMemo(() => {
    const stored = history.data?.points ?? [];
    const newest = stored.at(-1)?.at ?? 0;
    return [...stored, ...(range === "1h" ? live.filter((p) => p.at > newest) : [])];
  }, [history.data, live, range]);
  const hasNetwork = points.some((p) => p.netRxBytesPerSec !== null);

  return (
    <section className="card" data-testid="vm-graphs">
      <div className="page-head">
        <h2>Usage</h2>
        <div className="segmented" role="group" aria-label="Range">
          {(["1h", "24h"] as const).map((r) => (
            <button key={r} type="button" className={r === range ? "on" : undefined} aria-pressed={r === range} onClick={() => setRange(r)}>
              {r === "1h" ? "Last hour" : "24 hours"}
            </button>
          ))}
        </div>
      </div>
      {points.length === 0 ? <p className="muted">{running ? "Waiting for the first samples…" : "No figures: the VM has not run lately."}</p> : null}
      <div className="graphs">
        <UsageChart title="CPU (% of one core)" testId="graph-cpu" series={CPU} data={columns(points, ["cpuPercent"])} {...PERCENT} />
        <UsageChart title="Memory" testId="graph-memory" series={MEMORY} data={columns(points, ["rssBytes", "guestMemUsedBytes"])} {...BYTES} />
        <UsageChart
          title="Disk"
          testId="graph-disk"
          series={DISK}
          data={columns(points, ["diskReadBytesPerSec", "diskWriteBytesPerSec"])}
          {...BYTES_PER_SECOND}
        />
        {hasNetwork ? (
          <UsageChart
            title="Network (bridge NIC)"
            testId="graph-network"
            series={NETWORK}
            data={columns(points, ["netRxBytesPerSec", "netTxBytesPerSec"])}
            {...BYTES_PER_SECOND}
          />
        ) : (
          <p className="muted graph-note" data-testid="graph-network">
            Network: qemu&apos;s user networking (SSH, forwards, nat) keeps no byte counters; only a bridge NIC&apos;s traffic is graphed.
          </p>
        )}
      </div>
    </section>
  );
}
