/**
 * The live feed of VM changes as the dashboard takes it: each change carries the VM's
 * list row (or null once it is gone), so a tab patches its cached list instead of fetching
 * the whole inventory again, and the event recorded for it as vm.events lists it, so a
 * follower (`hangar events --follow`) prints it as it prints past events. Row and event are
 * read once per change, whatever the number of tabs listening, and a tab that reconnects is
 * first given what it missed since its last event.
 */
import type { Db } from "../db.ts";
import type { Hangar } from "../hangar.ts";
import type { VmChange } from "./bus.ts";
import { listRow } from "./inventory.ts";
import { isState } from "./state.ts";

/** A VM event as the recorder stored it (server/audit/recorder.ts) and vm.events lists it. */
export type RecordedEvent = Awaited<ReturnType<Db["event"]["findFirstOrThrow"]>>;

export type LiveChange = VmChange & {
  row: Awaited<ReturnType<typeof listRow>>;
  /**
   * The event recorded for this change (eventId); null for a change that records none: a
   * state in progress (Starting, Stopping…) and "Gone", the row's removal after the Deleted event.
   */
  event: RecordedEvent | null;
};

/** How long a row read for one change is shared with the other listeners. */
const SHARED_MS = 2000;
/** At most this many missed changes are replayed; a tab further behind reloads its list. */
const REPLAY_LIMIT = 500;

const shared = new WeakMap<Hangar, Map<string, Promise<LiveChange>>>();

/** The change with its row and event, read once for every listener. */
function withRow(hangar: Hangar, change: VmChange): Promise<LiveChange> {
  let rows = shared.get(hangar);
  if (!rows) shared.set(hangar, (rows = new Map()));
  const key = `${change.vmId}|${change.state}|${change.eventId}`;
  let pending = rows.get(key);
  if (!pending) {
    const row = change.state === "Gone" ? null : listRow(hangar, change.vmId);
    // The bus names the event by its id alone (it crosses hosts as a NOTIFY of ids: fanout.ts);
    // only a VM event is passed on (audit entries are the admin's, and a change never names one).
    const event = change.eventId ? hangar.db.event.findUnique({ where: { id: change.eventId } }) : null;
    pending = Promise.all([row, event]).then(([row, event]) => ({ ...change, row, event: event?.stream === "vm" ? event : null }));
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
  // Each change's row is read as it is published: read when this listener gets to it (after a
  // replay, or behind a burst) it would show what later actions made of the VM.
  const live = hangar.bus.changes((change) => {
    const read = withRow(hangar, change);
    read.catch(() => undefined);
    return read;
  }, signal);
  const replayed = new Set<string>();
  if (lastEventId) {
    for (const change of await missedSince(hangar, lastEventId)) {
      replayed.add(change.eventId);
      yield await withRow(hangar, change);
    }
  }
  for await (const read of live) {
    const change = await read;
    if (change.eventId && replayed.has(change.eventId)) continue;
    yield change;
  }
}
