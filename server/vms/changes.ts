/**
 * The live feed of VM changes as the dashboard takes it: each change carries the VM's
 * list row (or null once it is gone), so a tab patches its cached list instead of fetching
 * the whole inventory again, and the event recorded for it as vm.events lists it, so a
 * follower (`hangar events --follow`) prints it as it prints past events. Row and event are
 * read once per change, whatever the number of tabs listening, and a tab that reconnects is
 * first given what it missed since its last event, then told whether that was all of it.
 */
import type { Db } from "../db.ts";
import type { Hangar } from "../hangar.ts";
import type { VmChange } from "./bus.ts";
import { listRow } from "./inventory.ts";
import { heldRow } from "./list.ts";
import { isState } from "./state.ts";

/** A VM event as the recorder stored it (server/audit/recorder.ts) and vm.events lists it. */
export type RecordedEvent = Awaited<ReturnType<Db["event"]["findFirstOrThrow"]>>;

type ListRow = NonNullable<Awaited<ReturnType<typeof listRow>>>;

/** What lists filter and sort a VM by (vm.list's filters and sort keys). */
export type ListedAs = Pick<ListRow, "name" | "state" | "ownerId" | "hostId" | "imageId" | "poolId" | "tags" | "createdAt"> & {
  owner: { email: string } | null;
  host: { name: string } | null;
};

export type LiveChange = VmChange & {
  row: ListRow | null;
  /**
   * The VM as lists had it before this change, so a tab knows whether it was in a list whose
   * later pages it has not read (and so what the list's count becomes); null when not known
   * (a VM just made, a replayed change).
   */
  before: ListedAs | null;
  /**
   * The event recorded for this change (eventId); null for a change that records none: a
   * state in progress (Starting, Stopping…) and "Gone", the row's removal after the Deleted event.
   */
  event: RecordedEvent | null;
};

/**
 * Sent once per subscription, after the changes it replays: `caughtUp` false when the caller
 * may lack some (a first subscription, more missed than are replayed, a VM deleted meanwhile
 * whose row a replay cannot name), so a tab reads its lists again only then.
 */
export interface LiveStart {
  caughtUp: boolean;
}

export type LiveMessage = LiveChange | LiveStart;

/** How long a row read for one change is shared with the other listeners. */
const SHARED_MS = 2000;
/** At most this many missed events are replayed; a tab further behind reloads its lists. */
export const REPLAY_LIMIT = 500;
/** A resume point that names no event: the time a subscription started (`live<ms>`). */
const TIME_MARK = /^live(\d{1,15})$/;
/** A time mark resumes this much earlier: another host's clock may be behind (a change replayed twice does no harm). */
const CLOCK_SKEW_MS = 1000;

interface Feed {
  reads: Map<string, Promise<LiveChange>>;
  /** Each VM's last row as a change carried it, while some stream listens (none: no change is read, so none is kept). */
  last: Map<string, Promise<ListedAs | null>>;
  streams: number;
}

const feeds = new WeakMap<Hangar, Feed>();

function feedOf(hangar: Hangar): Feed {
  let feed = feeds.get(hangar);
  if (!feed) feeds.set(hangar, (feed = { reads: new Map(), last: new Map(), streams: 0 }));
  return feed;
}

function listedAs(row: ListedAs): ListedAs {
  const { name, state, ownerId, hostId, imageId, poolId, tags, createdAt, owner, host } = row;
  return { name, state, ownerId, hostId, imageId, poolId, tags, createdAt, owner: owner && { email: owner.email }, host: host && { name: host.name } };
}

/**
 * The change with its row and event, read once for every listener. A live change (not a
 * replayed one) also carries the row the VM's previous change carried: changes are read in
 * the order they are published, so that is the row lists had before this one.
 */
function withRow(hangar: Hangar, change: VmChange, live: boolean): Promise<LiveChange> {
  const feed = feedOf(hangar);
  const key = `${live ? "live" : "replay"}|${change.vmId}|${change.state}|${change.eventId}`;
  let pending = feed.reads.get(key);
  if (!pending) {
    const row = change.state === "Gone" ? null : listRow(hangar, change.vmId);
    // The bus names the event by its id alone (it crosses hosts as a NOTIFY of ids: fanout.ts);
    // only a VM event is passed on (audit entries are the admin's, and a change never names one).
    const event = change.eventId ? hangar.db.event.findUnique({ where: { id: change.eventId } }) : null;
    // Not read since this process started (or since a stream last listened): the row the lists
    // were last served with, which is the VM as it was unless that was read after this change's write.
    const before = live
      ? (feed.last.get(change.vmId) ??
        heldRow(hangar, change.vmId).then(
          (row) => (row ? listedAs(row) : null),
          () => null,
        ))
      : null;
    pending = Promise.all([row, event, before]).then(([row, event, before]) => ({ ...change, row, before, event: event?.stream === "vm" ? event : null }));
    if (live) {
      if (change.state === "Gone") feed.last.delete(change.vmId);
      else
        feed.last.set(
          change.vmId,
          pending.then(
            (read) => (read.row ? listedAs(read.row) : null),
            () => null,
          ),
        );
    }
    feed.reads.set(key, pending);
    setTimeout(() => feed.reads.delete(key), SHARED_MS).unref();
  }
  return pending;
}

/**
 * The changes recorded after resume point `lastEventId` (an event id, or the time mark a
 * subscription started with), oldest first: every VM event, state changes and row changes
 * (tags, rename…) alike, each with the VM's state now when it names none. `complete` is
 * false when that is not all a tab missed: an unknown resume point, more than REPLAY_LIMIT
 * events, or a VM deleted meanwhile (its events no longer name it, so no row can go).
 */
async function missedSince(hangar: Hangar, lastEventId: string): Promise<{ changes: VmChange[]; complete: boolean }> {
  const mark = TIME_MARK.exec(lastEventId);
  const since = mark
    ? new Date(Number(mark[1]) - CLOCK_SKEW_MS)
    : (await hangar.db.event.findUnique({ where: { id: lastEventId }, select: { createdAt: true } }))?.createdAt;
  if (!since) return { changes: [], complete: false };
  const events = await hangar.db.event.findMany({
    where: { stream: "vm", createdAt: { gte: since }, id: { not: lastEventId } },
    orderBy: [{ createdAt: "asc" }, { id: "asc" }],
    take: REPLAY_LIMIT + 1,
    select: { id: true, vmId: true, vmName: true, toState: true, vm: { select: { state: true } } },
  });
  if (events.length > REPLAY_LIMIT) return { changes: [], complete: false };
  const changes = events.flatMap((event) => {
    const state = event.toState ?? event.vm?.state;
    return event.vmId && state && isState(state) ? [{ vmId: event.vmId, vmName: event.vmName ?? "", state, eventId: event.id }] : [];
  });
  return { changes, complete: events.every((event) => event.vmId !== null) };
}

/**
 * Every change from now on, each with its row: first those missed since `lastEventId`, then
 * a LiveStart saying whether those were all, then the live ones.
 */
export async function* liveChanges(hangar: Hangar, lastEventId: string | null | undefined, signal?: AbortSignal): AsyncGenerator<LiveMessage> {
  const feed = feedOf(hangar);
  feed.streams += 1;
  try {
    // Each change's row is read as it is published: read when this listener gets to it (after a
    // replay, or behind a burst) it would show what later actions made of the VM.
    const live = hangar.bus.changes((change) => {
      const read = withRow(hangar, change, true);
      read.catch(() => undefined);
      return read;
    }, signal);
    const replayed = new Set<string>();
    const missed = lastEventId ? await missedSince(hangar, lastEventId) : { changes: [], complete: false };
    for (const change of missed.changes) {
      replayed.add(change.eventId);
      yield await withRow(hangar, change, false);
    }
    yield { caughtUp: missed.complete };
    for await (const read of live) {
      const change = await read;
      if (change.eventId && replayed.has(change.eventId)) continue;
      yield change;
    }
  } finally {
    feed.streams -= 1;
    if (feed.streams === 0) feed.last.clear();
  }
}

/** The resume point of a subscription that has seen no event yet: events from this moment on. */
export function timeMark(now = Date.now()): string {
  return `live${now}`;
}
