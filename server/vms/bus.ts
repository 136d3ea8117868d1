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

  subscribe(listener: (change: VmChange) => void): () => void {
    this.emitter.on("change", listener);
    return () => this.emitter.off("change", listener);
  }

  /** The changes as an async iterable, ended by `signal`. */
  async *changes(signal?: AbortSignal): AsyncGenerator<VmChange> {
    for await (const [change] of on(this.emitter, "change", { signal })) {
      yield change as VmChange;
    }
  }
}
