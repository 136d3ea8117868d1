"use client";
/** How long ago `since` was, kept current by the shared minute clock. */
import { formatAge } from "./format.ts";
import { useMinuteClock } from "./use-now.ts";

export function Age({ since }: { since: Date }) {
  const now = useMinuteClock();
  // The clock moves by the minute: younger than that reads "<1m" rather than a frozen second count.
  const text = now - since.getTime() < 60_000 ? "<1m" : formatAge(since, now);
  return <span title={since.toLocaleString()}>{text}</span>;
}
