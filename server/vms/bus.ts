/**
 * The in-process bus: every state change and event is published here once it is in the
 * database; the live stream (tRPC subscription) and the console hub listen.
 */
import { EventEmitter, on } from "node:events";
import type { State } from "./state.ts";

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

  publish(change: VmChange): void {
    this.emitter.emit("change", change);
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
   * The changes as an async iterable, ended by `signal`. It listens from this call on, not
   * from the first read, so a caller can look something up first without missing a change.
   */
  changes(signal?: AbortSignal): AsyncIterable<VmChange> {
    const events = on(this.emitter, "change", { signal });
    return {
      async *[Symbol.asyncIterator]() {
        for await (const [change] of events) yield change as VmChange;
      },
    };
  }
}
