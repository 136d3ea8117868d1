/**
 * `hangar events` as a person reads it: one line per VM event, in the same columns for the
 * past events (vm.events) and the live ones (vm.onChange carries the event recorded for each
 * change), so `--follow` reads as `kubectl get events -w` or `incus monitor` do.
 */
import { localTime } from "./api.ts";

/** What a line shows of a VM event, as vm.events lists it and vm.onChange carries it. */
export interface ShownEvent {
  createdAt: Date;
  vmName: string | null;
  action: string;
  ok: boolean;
  message: string;
}

export const EVENT_HEADER = ["TIME", "VM", "ACTION", "RESULT", "MESSAGE"];
/**
 * Columns start this wide, so that a follower's lines stay under the header for a time, VM
 * names up to 12 letters and the lifecycle's actions ("reconcile" the widest) even when it
 * printed no past event to size them.
 */
const MIN_WIDTHS = ["2026-01-01 00:00:00".length, 12, "reconcile".length, "FAILED".length, 0];

const cells = (event: ShownEvent) => [localTime(event.createdAt, true), event.vmName ?? "", event.action, event.ok ? "ok" : "FAILED", event.message];

/**
 * The lines of a table that grows as events arrive: its columns are as wide as the header
 * and the past events given, and a later, wider cell widens its column from that line on.
 */
export function eventTable(past: ShownEvent[]) {
  const widths = EVENT_HEADER.map((title, i) => Math.max(title.length, MIN_WIDTHS[i] ?? 0));
  const fit = (row: string[]) => row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const format = (row: string[]) =>
    row
      .map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell))
      .join("  ")
      .trimEnd();
  for (const event of past) fit(cells(event));
  return {
    header: () => format(EVENT_HEADER),
    line: (event: ShownEvent) => {
      const row = cells(event);
      fit(row);
      return format(row);
    },
  };
}

/**
 * The newest `limit` events (or audit entries), read a page of at most 200 at a time (the
 * API gives newest first), oldest first as they are printed.
 */
export async function newestOldestFirst<T>(
  limit: number,
  read: (page: { limit: number; cursor: string | undefined }) => Promise<{ events: T[]; nextCursor?: string | undefined }>,
): Promise<T[]> {
  const found: T[] = [];
  for (let cursor: string | undefined, more = limit > 0; more;) {
    const page = await read({ limit: Math.min(200, limit - found.length), cursor });
    found.push(...page.events);
    cursor = page.nextCursor;
    more = cursor !== undefined && found.length < limit;
  }
  return found.reverse();
}

/** Event ids already printed, the newest `limit` of them: a replay after a reconnect may repeat a few. */
export function seenIds(limit = 1000) {
  const ids = new Set<string>();
  return {
    /** True the first time `id` is given (and remembers it), false after. */
    first(id: string): boolean {
      if (ids.has(id)) return false;
      ids.add(id);
      for (const old of ids) {
        if (ids.size <= limit) break;
        ids.delete(old);
      }
      return true;
    },
  };
}
