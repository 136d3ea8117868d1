/** A VM state as a coloured badge; the text is the state itself (e.g. "Running"). */
const tone: Record<string, string> = {
  Running: "ok",
  Stopped: "idle",
  Suspended: "idle",
  Initial: "idle",
  Deleted: "idle",
  ErrorUnknown: "bad",
};

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`badge badge-${tone[state] ?? "busy"}`} data-testid="vm-state">
      {state}
    </span>
  );
}
