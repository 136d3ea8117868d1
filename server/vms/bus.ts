/**
 * The in-process bus: every state change and event is published here once it is in the
 * database; the live stream (tRPC subscription) and the console hub listen. With several
 * hosts on PostgreSQL, server/vms/fanout.ts relays what is published here to the other
 * processes and delivers theirs.
 */
import { EventEmitter, on } from "node:events";
import type { Db } from "../db.ts";
import { isState, type State } from "./state.ts";

export interface VmChange {
  vmId: string;
  vmName: string;
  state: State | "Gone";
  eventId: string;
}

export class VmBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per open dashboard tab; there is no leak to warn about.
    this.emitter.setMaxListeners(0);
  }

  private relay: ((change: VmChange) => void) | undefined;
  /** What listeners' `prepare` started for the change being published (changes()). */
  private preparing: Promise<unknown>[] = [];

  /**
   * A change made in this process: its listeners get it, and so do other processes' (relayed).
   * Resolves once what listeners prepare for it (a live stream's row read) is done: a caller
   * that awaits it before its next write has every listener see the VM as this change left it.
   */
  publish(change: VmChange): Promise<void> {
    this.preparing = [];
    this.emitter.emit("change", change);
    this.relay?.(change);
    const prepared = this.preparing;
    this.preparing = [];
    return Promise.allSettled(prepared).then(() => undefined);
  }

  /** A change another process made: only this process's listeners get it. */
  deliver(change: VmChange): void {
    this.emitter.emit("change", change);
  }

  /** Sends every change published from now on to `relay` too (undefined: no more). */
  relayTo(relay: ((change: VmChange) => void) | undefined): void {
    this.relay = relay;
  }

  /** How many listen now (live streams, the console hub). */
  listeners(): number {
    return this.emitter.listenerCount("change");
  }

  subscribe(listener: (change: VmChange) => void): () => void {
    this.emitter.on("change", listener);
    return () => this.emitter.off("change", listener);
  }

  /**
   * The changes as an async iterable, ended by `signal`, each passed through `prepare` the
   * moment it is published rather than when the reader gets to it: a reader behind by a few
   * changes still sees what each one meant then. It listens from this call on, not from the
   * first read, so a caller can look something up first without missing a change.
   */
  changes<T>(prepare: (change: VmChange) => T, signal?: AbortSignal): AsyncIterable<T> {
    const prepared = new EventEmitter();
    const unsubscribe = this.subscribe((change) => {
      const value = prepare(change);
      if (value instanceof Promise) this.preparing.push(value);
      prepared.emit("change", value);
    });
    signal?.addEventListener("abort", unsubscribe, { once: true });
    const values = on(prepared, "change", { signal });
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const [value] of values) yield value as T;
        } finally {
          unsubscribe();
        }
      },
    };
  }
}

/**
 * Tells open lists, VM pages and `hangar events --follow` that VM `vm` changed without moving
 * its state (the recorder publishes state changes only): its row (tags, forwards, resources)
 * or what its page shows (snapshots, disk, autostart), with event `eventId`. The state is
 * read again: an action may have moved it since.
 */
export async function announceRowChange(hangar: { db: Db; bus: VmBus }, vm: { id: string; name: string }, eventId: string): Promise<void> {
  const now = await hangar.db.vm.findUnique({ where: { id: vm.id }, select: { state: true } });
  if (now && isState(now.state)) await hangar.bus.publish({ vmId: vm.id, vmName: vm.name, state: now.state, eventId });
}
