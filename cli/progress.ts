/** Progress on stderr, only when it is a terminal and the output is not --json. */
import cliProgress from "cli-progress";

export interface Progress {
  update(value: number, total?: number): void;
  stop(): void;
}

export function progressBar(label: string, total: number, enabled: boolean, unit = "s"): Progress {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    // The cursor stays visible: a hidden one stayed hidden in the person's shell after Ctrl+C.
    { stream: process.stderr, format: `${label} [{bar}] {value}/{total} ${unit}`, hideCursor: false, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (value, newTotal) => {
      if (newTotal !== undefined) bar.setTotal(newTotal);
      bar.update(value);
    },
    stop: () => bar.stop(),
  };
}
