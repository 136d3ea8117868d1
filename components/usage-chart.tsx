"use client";
/** One small uPlot time chart: x in seconds, one or more series; new data replaces the old in place. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
}

const twoDigits = (n: number) => String(n).padStart(2, "0");

/**
 * A time tick as "14:05" ("14:05:30" when ticks are under a minute apart), or the date at
 * midnight: one short line each, so ticks 72 px apart never overlap (uPlot's own labels add
 * a second line with the date and crowd a narrow chart).
 */
function timeLabel(seconds: number, increment: number): string {
  const at = new Date(seconds * 1000);
  const clock = `${twoDigits(at.getHours())}:${twoDigits(at.getMinutes())}`;
  if (increment < 60) return `${clock}:${twoDigits(at.getSeconds())}`;
  if (increment >= 86_400 || (at.getHours() === 0 && at.getMinutes() === 0)) return at.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return clock;
}

export function UsageChart({
  title,
  series,
  data,
  format,
  floor = 1,
  testId,
}: {
  title: string;
  series: ChartSeries[];
  data: uPlot.AlignedData;
  format: (value: number) => string;
  /** The least top of the y-axis, so a flat or near-zero line gets readable ticks, not "0 %, 0 %, 0 %". */
  floor?: number;
  testId: string;
}) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // What a chart made again (new series or format) starts from; the data effect keeps it current.
  const latest = useRef(data);

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const chart = new uPlot(
      {
        width: Math.max(240, element.clientWidth),
        height: 160,
        legend: { show: true },
        scales: {
          // One point alone (a VM that just started) gets a minute either side; uPlot would give it a whole day.
          x: { time: true, range: (u, min, max) => (u.data[0].length === 1 ? [min - 60, min + 60] : [min, max]) },
          y: { range: (_u, _min, max) => [0, Math.max(floor, max * 1.1)] },
        },
        // As wide as the longest label ("381.5 MiB") needs, about 7 px a character, plus the ticks' gap.
        axes: [
          { space: 72, values: (_u, ticks, _axis, _space, increment) => ticks.map((tick) => timeLabel(tick, increment)) },
          { values: (_u, ticks) => ticks.map(format), size: (_u, values) => 24 + 7 * Math.max(4, ...(values ?? []).map((v) => String(v).length)) },
        ],
        series: [
          {},
          ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, value: (_u: uPlot, v: number | null) => (v === null ? "—" : format(v)) })),
        ],
      },
      latest.current,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(240, element.clientWidth), height: 160 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [series, format, floor]);

  useEffect(() => {
    latest.current = data;
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure className="usage-chart" data-testid={testId} data-points={data[0].length}>
      <figcaption>{title}</figcaption>
      <div ref={holder} />
    </figure>
  );
}
