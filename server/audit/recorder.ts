/**
 * The one recorder of what happened. Two streams in one table, told apart by `stream`:
 * - "vm": lifecycle actions, reconciliations, snapshots and pool events. Readable by
 *   whoever may read the VM (vm.events).
 * - "audit": sign-ins and changes to users, tokens and accounts. Admins only (audit.list).
 * A VM event that moves a VM's state (or is marked live) is also published on the bus, once
 * it is stored.
 * An entry recorded while an API call runs carries that call's request id (server/log.ts),
 * and a VM event recorded under the caller's actor carries the caller's user id.
 */
import type { Db } from "../db.ts";
import { currentCaller, currentRequestId } from "../log.ts";
import { announceRowChange, type VmBus } from "../vms/bus.ts";
import type { State } from "../vms/state.ts";

export const STREAMS = ["vm", "audit"] as const;
export type Stream = (typeof STREAMS)[number];

/** Who asked: a user's email, "token NAME (email)", "system", "reconciler", "pool-keeper". */
export type Actor = string;

export interface VmEvent {
  stream: "vm";
  /** The VM it is about; id null once the VM is gone or for a pool-wide event. */
  vm: { id: string | null; name: string };
  actor: Actor;
  action: string;
  ok: boolean;
  message: string;
  from?: State | null;
  /** The state it reached ("Gone": the row was removed); set when the state moved. */
  to?: State | "Gone" | null;
  /** The user behind the actor, for filtering. */
  userId?: string | null;
  /**
   * Sent live though the state did not move (open VM pages, `hangar events --follow`): an
   * action on the VM that no row shows, such as a command run or a terminal opened.
   */
  live?: boolean;
}

export interface AuditEntry {
  stream: "audit";
  actor: Actor;
  /** "sign-in", "user-create", "token-revoke"… */
  action: string;
  ok: boolean;
  message: string;
  /** What it was about: a user's email, a token's name. */
  target: string;
  userId?: string | null;
}

export type Entry = VmEvent | AuditEntry;

export type Recorder = ReturnType<typeof createRecorder>;

/**
 * The user behind `actor` when the API call being served is theirs. Work a call sets going
 * under another actor (a pool's refill, the reconciler) runs in the call's scope too, but
 * is not the caller's doing.
 */
function callerUserId(actor: Actor): string | null {
  const caller = currentCaller();
  return caller && caller.actor === actor ? caller.userId : null;
}

export function createRecorder({ db, bus }: { db: Db; bus: VmBus }) {
  async function record(entry: Entry) {
    if (entry.stream === "audit") {
      return db.event.create({
        data: {
          stream: "audit",
          actor: entry.actor,
          action: entry.action,
          ok: entry.ok,
          message: entry.message,
          target: entry.target,
          userId: entry.userId ?? null,
          requestId: currentRequestId() ?? null,
        },
      });
    }
    const event = await db.event.create({
      data: {
        stream: "vm",
        vmId: entry.vm.id,
        vmName: entry.vm.name,
        actor: entry.actor,
        action: entry.action,
        fromState: entry.from ?? null,
        toState: entry.to ?? null,
        ok: entry.ok,
        message: entry.message,
        userId: entry.userId ?? callerUserId(entry.actor),
        requestId: currentRequestId() ?? null,
      },
    });
    if (entry.to) await bus.publish({ vmId: entry.vm.id ?? "", vmName: entry.vm.name, state: entry.to, eventId: event.id });
    else if (entry.live && entry.vm.id) await announceRowChange({ db, bus }, { id: entry.vm.id, name: entry.vm.name }, event.id);
    return event;
  }

  return { record };
}

/** Which events a page is of: a stream, a VM (by id, or by name for a deleted one), a user, an action. */
export type EventFilter = NonNullable<Parameters<Db["event"]["findMany"]>[0]>["where"];

/** A page of the events `where` picks, newest first; nextCursor names the last while more remain. */
export async function listEvents(db: Db, where: EventFilter, page: { limit: number; cursor?: string | undefined }) {
  const events = await db.event.findMany({
    where,
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: page.limit + 1,
    ...(page.cursor ? { cursor: { id: page.cursor }, skip: 1 } : {}),
  });
  const found = events.slice(0, page.limit);
  return { events: found, nextCursor: events.length > page.limit ? found[found.length - 1]?.id : undefined };
}
