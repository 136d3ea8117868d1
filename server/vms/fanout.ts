/**
 * Live changes across hosts: every change published on this process's bus goes out with
 * PostgreSQL NOTIFY, and every other process's change comes in with LISTEN and is delivered
 * to this bus, so each dashboard sees every host's changes as they happen. The database is
 * the one channel (no protocol of our own); SQLite means one process, where the bus alone is
 * enough and this is not started.
 *
 * A notification names the VM, its new state and its event (ids and a name, far below
 * NOTIFY's 8000-byte limit); each receiver reads the VM's row itself, as for a local change.
 * LISTEN holds one dedicated connection, reconnected with backoff when it drops; after a
 * reconnect, the state changes recorded meanwhile are read from the events and delivered.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { z } from "zod";
import type { Db } from "../db.ts";
import { errorMessage } from "../errors.ts";
import type { VmBus, VmChange } from "./bus.ts";
import { isState } from "./state.ts";

export const CHANGES_CHANNEL = "hangar_vm_changes";

const notification = z.object({
  /** The process that published it: a process ignores its own. */
  from: z.string(),
  vmId: z.string(),
  vmName: z.string(),
  state: z.string(),
  eventId: z.string(),
});

/** Remembered event ids (delivered or published here) are kept this long, for catching up. */
const SEEN_MS = 10 * 60_000;
/** Events recorded this long before a connection dropped are looked at again after it is back. */
const CATCH_UP_MARGIN_MS = 2000;
const CATCH_UP_LIMIT = 500;

export interface FanoutOptions {
  databaseUrl: string;
  db: Db;
  bus: VmBus;
  log?: (message: string) => void;
  /** First wait before reconnecting LISTEN; it doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

export type Fanout = ReturnType<typeof startFanout>;

export function startFanout({ databaseUrl, db, bus, log = () => undefined, retryMs = 500, maxRetryMs = 10_000 }: FanoutOptions) {
  const self = randomBytes(8).toString("hex");
  const seen = new Map<string, number>();
  let stopped = false;
  let listener: pg.Client | undefined;
  let retry = retryMs;
  let timer: NodeJS.Timeout | undefined;
  /** When LISTEN was lost (or first failed): what was recorded since is read back on reconnect. */
  let lostAt: number | undefined;
  let markListening: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (markListening = resolve));

  function remember(eventId: string): void {
    if (!eventId) return;
    const now = Date.now();
    seen.set(eventId, now);
    for (const [id, at] of seen) {
      if (now - at < SEEN_MS) break;
      seen.delete(id);
    }
  }

  // One connection sends, in publish order (a pool of one keeps a Starting before its Running).
  const sender = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  sender.on("error", () => undefined);
  let sending = Promise.resolve();
  bus.relayTo((change) => {
    remember(change.eventId);
    const payload = JSON.stringify({ from: self, ...change });
    sending = sending
      .then(() => sender.query("SELECT pg_notify($1, $2)", [CHANGES_CHANNEL, payload]))
      .then(
        () => undefined,
        (error: unknown) => log(`the change of VM ${change.vmName} to ${change.state} did not reach the other hosts: ${errorMessage(error)}`),
      );
  });

  function receive(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return;
    }
    const parsed = notification.safeParse(json);
    if (!parsed.success || parsed.data.from === self) return;
    const { vmId, vmName, state, eventId } = parsed.data;
    if (state !== "Gone" && !isState(state)) return;
    if (eventId && seen.has(eventId)) return;
    remember(eventId);
    bus.deliver({ vmId, vmName, state, eventId });
  }

  /** Delivers the state changes recorded since `since` that this process has not seen. */
  async function catchUp(since: number): Promise<void> {
    const events = await db.event.findMany({
      where: { stream: "vm", toState: { not: null }, createdAt: { gte: new Date(since - CATCH_UP_MARGIN_MS) } },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      take: CATCH_UP_LIMIT,
      select: { id: true, vmId: true, vmName: true, toState: true },
    });
    for (const event of events) {
      if (!event.vmId || !event.toState || !isState(event.toState) || seen.has(event.id)) continue;
      remember(event.id);
      const change: VmChange = { vmId: event.vmId, vmName: event.vmName ?? "", state: event.toState, eventId: event.id };
      bus.deliver(change);
    }
  }

  function connect(): void {
    const client = new pg.Client({ connectionString: databaseUrl });
    let dropped = false;
    const drop = (why: unknown) => {
      if (dropped) return;
      dropped = true;
      if (listener === client) listener = undefined;
      client.end().catch(() => undefined);
      if (stopped) return;
      lostAt ??= Date.now();
      log(`live changes from other hosts paused (${errorMessage(why)}); listening again in ${retry} ms`);
      timer = setTimeout(connect, retry);
      timer.unref();
      retry = Math.min(retry * 2, maxRetryMs);
    };
    client.on("error", drop);
    client.on("end", () => drop("the connection ended"));
    client.on("notification", (message) => {
      if (message.channel === CHANGES_CHANNEL && message.payload) receive(message.payload);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGES_CHANNEL}`))
      .then(async () => {
        if (stopped) return void client.end().catch(() => undefined);
        listener = client;
        retry = retryMs;
        const since = lostAt;
        lostAt = undefined;
        if (since !== undefined) {
          await catchUp(since).catch((error: unknown) => log(`changes missed while not listening could not be read: ${errorMessage(error)}`));
          log("live changes from other hosts resumed");
        }
        markListening();
      }, drop);
  }
  connect();

  return {
    /** Resolves once LISTEN is in place (changes other processes publish from then on arrive). */
    listening: () => listening,
    /** Stops relaying and listening; changes already being sent go out first. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      bus.relayTo(undefined);
      await listener?.end().catch(() => undefined);
      await sending;
      await sender.end().catch(() => undefined);
    },
  };
}
