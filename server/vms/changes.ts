/**
 * The live feed of VM changes as the dashboard takes it: each change carries the VM's
 * list row (or null once it is gone), so a tab patches its cached list instead of fetching
 * the whole inventory again. The row is read once per change, whatever the number of tabs
 * listening, and a tab that reconnects is first given what it missed since its last event.
 */
import type { Hangar } from "../hangar.ts";
import type { VmChange } from "./bus.ts";
import { listRow } from "./inventory.ts";
import { isState } from "./state.ts";

export type LiveChange = VmChange & { row: Awaited<ReturnType<typeof listRow>> };

/** How long a row read for one change is shared with the other listeners. */
const SHARED_MS = 2000;
/** At most this many missed changes are replayed; a tab further behind reloads its list. */
const REPLAY_LIMIT = 500;

const shared = new WeakMap<Hangar, Map<string, Promise<LiveChange>>>();

/** The change with its row, read once for every listener. */
function withRow(hangar: Hangar, change: VmChange): Promise<LiveChange> {
  let rows = shared.get(hangar);
  if (!rows) shared.set(hangar, (rows = new Map()));
  const key = `${change.vmId}|${change.state}|${change.eventId}`;
  let pending = rows.get(key);
  if (!pending) {
    pending = (change.state === "Gone" ? Promise.resolve(null) : listRow(hangar, change.vmId)).then((row) => ({ ...change, row }));
    rows.set(key, pending);
    setTimeout(() => rows.delete(key), SHARED_MS).unref();
  }
  return pending;
}

/** The state changes recorded after event `lastEventId`, oldest first. */
async function missedSince(hangar: Hangar, lastEventId: string): Promise<VmChange[]> {
  const last = await hangar.db.event.findUnique({ where: { id: lastEventId }, select: { createdAt: true } });
  if (!last) return [];
  const events = await hangar.db.event.findMany({
    where: { stream: "vm", toState: { not: null }, createdAt: { gte: last.createdAt }, id: { not: lastEventId } },
    orderBy: [{ createdAt: "asc" }, { id: "asc" }],
    take: REPLAY_LIMIT,
    select: { id: true, vmId: true, vmName: true, toState: true },
  });
  // A deleted VM's events no longer name it (vmId is cleared with the row); a reconnecting
  // tab reloads its list once anyway, which drops such rows.
  return events.flatMap((event) =>
    event.vmId && event.toState && isState(event.toState) ? [{ vmId: event.vmId, vmName: event.vmName ?? "", state: event.toState, eventId: event.id }] : [],
  );
}

/** Every change from now on (after those missed since `lastEventId`), each with its row. */
export async function* liveChanges(hangar: Hangar, lastEventId: string | null | undefined, signal?: AbortSignal): AsyncGenerator<LiveChange> {
  const live = hangar.bus.changes(signal);
  const replayed = new Set<string>();
  if (lastEventId) {
    for (const change of await missedSince(hangar, lastEventId)) {
      replayed.add(change.eventId);
      yield await withRow(hangar, change);
    }
  }
  for await (const change of live) {
    if (change.eventId && replayed.has(change.eventId)) continue;
    yield await withRow(hangar, change);
  }
}
