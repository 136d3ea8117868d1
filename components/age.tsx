"use client";
/** How long ago `since` was, kept current by the shared minute clock. */
import { formatAge } from "./format.ts";
import { useMinuteClock } from "./use-now.ts";

export function Age({ since }: { since: Date }) {
  const now = useMinuteClock();
  // The clock moves by the minute: younger than that reads "<1m" rather than a frozen second count.
  const text = now - since.getTime() < 60_000 ? "<1m" : formatAge(since, now);
  // The exact time is the tooltip, written when the pointer comes: the first date a tab
  // formats loads the locale's data, about 30 ms of the inventory's first rows.
  return <span onPointerEnter={(event) => (event.currentTarget.title = since.toLocaleString())}>{text}</span>;
}
