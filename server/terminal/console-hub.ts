/**
 * The serial console hub. qemu's serial socket takes one client, so the server holds one
 * connection per running VM and fans its bytes out to every viewer. A new viewer first
 * gets the scrollback (the last 1 MiB: from serial.log when the hub starts, then kept in
 * memory), then live bytes. A viewer whose socket falls behind pauses the source (back-
 * pressure) instead of being buffered without bound. Viewers stay attached across a VM
 * stop and start: they get a status message and the stream resumes by itself.
 */
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Manager } from "../driver/manager.ts";
import type { VmBus } from "../vms/bus.ts";

export const SCROLLBACK_BYTES = 1024 * 1024;
/** Above this many bytes queued for one viewer, the source is paused until it drains below LOW. */
export const HIGH_WATER = 256 * 1024;
export const LOW_WATER = 64 * 1024;

/** One watcher of a console: a WebSocket in production, a fake in tests. */
export interface Viewer {
  sendBytes(bytes: Buffer): void;
  sendStatus(state: string): void;
  /** Bytes queued for this viewer and not yet sent (ws.bufferedAmount). */
  bufferedAmount(): number;
}

/** The last `max` bytes written to it. */
export class Scrollback {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = SCROLLBACK_BYTES) {}

  append(bytes: Buffer): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0] ?? Buffer.alloc(0);
      const excess = this.size - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get length(): number {
    return this.size;
  }
}

export interface ConsoleHubDeps {
  bus: VmBus;
  driverFor: (vmId: string) => Manager;
  /** How long to wait between checks of a slow viewer's queue. */
  drainCheckMs?: number;
}

class VmConsole {
  readonly viewers = new Set<Viewer>();
  readonly scrollback = new Scrollback();
  private socket: Socket | undefined;
  private connecting: Promise<void> | undefined;
  private loaded = false;
  private paused = false;

  constructor(
    private readonly vmId: string,
    private readonly deps: ConsoleHubDeps,
  ) {}

  /** Connects to the serial socket if the VM runs and nobody holds it yet. */
  connect(): Promise<void> {
    if (this.socket || this.connecting) return this.connecting ?? Promise.resolve();
    this.connecting = (async () => {
      const driver = this.deps.driverFor(this.vmId);
      if (!this.loaded) {
        // After a server restart the history is in serial.log, not in memory.
        this.scrollback.append(Buffer.from(await driver.serialTail(SCROLLBACK_BYTES).catch(() => ""), "utf8"));
        this.loaded = true;
      }
      const socket = await driver.console().catch(() => undefined);
      if (!socket) return;
      this.socket = socket;
      socket.on("data", (bytes: Buffer) => this.broadcast(bytes));
      socket.on("close", () => {
        this.socket = undefined;
        this.paused = false;
        for (const viewer of this.viewers) viewer.sendStatus("Stopped");
      });
      socket.on("error", () => undefined);
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  write(bytes: Buffer): void {
    this.socket?.write(bytes);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private broadcast(bytes: Buffer): void {
    this.scrollback.append(bytes);
    for (const viewer of this.viewers) viewer.sendBytes(bytes);
    if (!this.paused && [...this.viewers].some((v) => v.bufferedAmount() > HIGH_WATER)) void this.waitForDrain();
  }

  /** Stops reading qemu's serial output until every viewer has caught up. */
  private async waitForDrain(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.paused = true;
    socket.pause();
    while (this.socket === socket && [...this.viewers].some((v) => v.bufferedAmount() > LOW_WATER)) {
      await sleep(this.deps.drainCheckMs ?? 20);
    }
    this.paused = false;
    if (this.socket === socket) socket.resume();
  }
}

export function createConsoleHub(deps: ConsoleHubDeps) {
  const consoles = new Map<string, VmConsole>();

  // Viewers stay attached across a stop and start: tell them, and reconnect once it runs.
  deps.bus.subscribe((change) => {
    const vmConsole = consoles.get(change.vmId);
    if (!vmConsole) return;
    if (change.state === "Gone") {
      vmConsole.close();
      consoles.delete(change.vmId);
      return;
    }
    for (const viewer of vmConsole.viewers) viewer.sendStatus(change.state);
    if (change.state === "Running") void vmConsole.connect();
  });

  return {
    /** Attaches a viewer: scrollback first, then live bytes. Returns the detach function. */
    async attach(vmId: string, viewer: Viewer): Promise<{ write: (bytes: Buffer) => void; detach: () => void }> {
      let vmConsole = consoles.get(vmId);
      if (!vmConsole) {
        vmConsole = new VmConsole(vmId, deps);
        consoles.set(vmId, vmConsole);
      }
      await vmConsole.connect();
      const scrollback = vmConsole.scrollback.contents();
      if (scrollback.length > 0) viewer.sendBytes(scrollback);
      vmConsole.viewers.add(viewer);
      const held = vmConsole;
      return {
        write: (bytes) => held.write(bytes),
        detach: () => {
          held.viewers.delete(viewer);
          // Nobody watches: let go of qemu's one serial client slot.
          if (held.viewers.size === 0) {
            held.close();
            consoles.delete(vmId);
          }
        },
      };
    },
    /** Viewers attached per VM, for tests and the status page. */
    viewerCounts(): Record<string, number> {
      return Object.fromEntries([...consoles].map(([id, c]) => [id, c.viewers.size]));
    },
    closeAll(): void {
      for (const vmConsole of consoles.values()) vmConsole.close();
      consoles.clear();
    },
  };
}

export type ConsoleHub = ReturnType<typeof createConsoleHub>;
