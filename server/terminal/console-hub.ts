/**
 * The serial console hub. qemu's serial socket takes one client, so the server holds one
 * connection per running VM that someone watches, and fans its bytes out to every viewer.
 * A new viewer first gets the scrollback (the last 1 MiB: read from serial.log at each
 * connect, so it survives a server restart and includes what the VM printed before the hub
 * attached; then kept in memory), then live bytes. A viewer whose socket falls behind
 * pauses the source (back-pressure) instead of being buffered without bound; one that stays
 * behind too long is let go so the others carry on. Viewers stay attached across a VM stop
 * and start: they are told, and the stream resumes by itself.
 */
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Manager } from "../driver/manager.ts";
import type { VmBus } from "../vms/bus.ts";

export const SCROLLBACK_BYTES = 1024 * 1024;
/** Above this many bytes queued for one viewer, the source is paused until it drains below LOW. */
export const HIGH_WATER = 256 * 1024;
export const LOW_WATER = 64 * 1024;

/** Printed into the terminals (not the scrollback) when the serial connection ends. */
export const STOPPED_NOTICE = "\r\n\x1b[2m[hangar] The VM is not running; this console reconnects when it starts.\x1b[0m\r\n";
export const TOO_SLOW_MESSAGE = "Your connection could not keep up with the console, so it was closed; reconnect to carry on.";

/** One watcher of a console: a WebSocket in production, a fake in tests. */
export interface Viewer {
  sendBytes(bytes: Buffer): void;
  sendStatus(state: string): void;
  /** Bytes queued for this viewer and not yet sent (ws.bufferedAmount). */
  bufferedAmount(): number;
  /** Ends the viewer with a sentence for the person (VM deleted, connection too slow). */
  close(message: string): void;
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

  replace(bytes: Buffer): void {
    this.chunks = [];
    this.size = 0;
    this.append(bytes);
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
  /** How often a paused source checks whether its viewers have drained. */
  drainCheckMs?: number;
  /** How long a viewer may keep the source paused before it is let go. */
  stallMs?: number;
}

class VmConsole {
  readonly viewers = new Set<Viewer>();
  readonly scrollback = new Scrollback();
  private socket: Socket | undefined;
  private connecting: Promise<void> | undefined;
  private paused = false;
  /** The VM's state as the bus last told it: a suspend also ends qemu, and is not a stop. */
  lastState: string | undefined;
  /** Set once the hub let go of this console; a connect that finishes later is undone. */
  closed = false;

  constructor(
    private readonly vmId: string,
    private readonly deps: ConsoleHubDeps,
  ) {}

  /** Connects to the serial socket if the VM runs and nobody holds it yet. */
  connect(): Promise<void> {
    if (this.closed || this.socket) return Promise.resolve();
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const driver = this.deps.driverFor(this.vmId);
    // Read before connecting: what the VM prints in between is only in the log (qemu drops
    // it while no client is connected), so nothing is shown twice.
    const history = Buffer.from(await driver.serialTail(SCROLLBACK_BYTES).catch(() => ""), "utf8");
    const socket = await driver.console().catch(() => undefined);
    if (this.closed) {
      socket?.destroy();
      return;
    }
    this.scrollback.replace(history);
    if (!socket) return;
    this.socket = socket;
    socket.on("data", (bytes: Buffer) => this.broadcast(bytes));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.paused = false;
      if (this.closed) return;
      // qemu exited (or dropped us): take the slot again if it still runs, else say so.
      void this.connect().then(() => {
        if (this.socket || this.closed) return;
        const state = this.lastState && this.lastState !== "Running" ? this.lastState : "Stopped";
        for (const viewer of this.viewers) {
          viewer.sendStatus(state);
          viewer.sendBytes(Buffer.from(STOPPED_NOTICE));
        }
      });
    });
  }

  /** True while the hub holds the VM's serial connection. */
  get live(): boolean {
    return this.socket !== undefined;
  }

  write(bytes: Buffer): void {
    this.socket?.write(bytes);
  }

  close(): void {
    this.closed = true;
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
    const stallDeadline = Date.now() + (this.deps.stallMs ?? 15_000);
    while (this.socket === socket && [...this.viewers].some((v) => v.bufferedAmount() > LOW_WATER)) {
      if (Date.now() > stallDeadline) {
        for (const viewer of this.viewers) {
          if (viewer.bufferedAmount() <= LOW_WATER) continue;
          this.viewers.delete(viewer);
          viewer.close(TOO_SLOW_MESSAGE);
        }
        break;
      }
      await sleep(this.deps.drainCheckMs ?? 20);
    }
    this.paused = false;
    if (this.socket === socket) socket.resume();
  }
}

export function createConsoleHub(deps: ConsoleHubDeps) {
  const consoles = new Map<string, VmConsole>();

  function release(vmId: string, vmConsole: VmConsole): void {
    vmConsole.close();
    if (consoles.get(vmId) === vmConsole) consoles.delete(vmId);
  }

  /** Lets go of the VM's console for good, telling its viewers why in `message`. */
  function end(vmId: string, vmConsole: VmConsole, message: string): void {
    release(vmId, vmConsole);
    for (const viewer of vmConsole.viewers) viewer.close(message);
  }

  // Viewers stay attached across a stop and start: tell them, and reconnect once it runs.
  const unsubscribe = deps.bus.subscribe((change) => {
    const vmConsole = consoles.get(change.vmId);
    if (!vmConsole) return;
    if (change.state === "Gone") return end(change.vmId, vmConsole, `VM "${change.vmName}" was deleted.`);
    vmConsole.lastState = change.state;
    for (const viewer of vmConsole.viewers) viewer.sendStatus(change.state);
    if (change.state === "Running") void vmConsole.connect();
  });

  /** Attaches a viewer: scrollback first, then live bytes. Returns the detach function. */
  async function attach(vmId: string, viewer: Viewer): Promise<{ write: (bytes: Buffer) => void; detach: () => void }> {
    let vmConsole = consoles.get(vmId);
    if (!vmConsole) {
      vmConsole = new VmConsole(vmId, deps);
      consoles.set(vmId, vmConsole);
    }
    await vmConsole.connect();
    // The last viewer left while this one waited: start over on a fresh console.
    if (vmConsole.closed) return attach(vmId, viewer);
    const scrollback = vmConsole.scrollback.contents();
    if (scrollback.length > 0) viewer.sendBytes(scrollback);
    if (!vmConsole.live) viewer.sendBytes(Buffer.from(STOPPED_NOTICE));
    vmConsole.viewers.add(viewer);
    const held = vmConsole;
    return {
      write: (bytes) => held.write(bytes),
      detach: () => {
        held.viewers.delete(viewer);
        // Nobody watches: let go of qemu's one serial client slot (serial.log keeps the rest).
        if (held.viewers.size === 0) release(vmId, held);
      },
    };
  }

  return {
    attach,
    /** VM `vmId` moved to another host: its serial console is there now, so its viewers here are told to open it again. */
    movedAway(vmId: string, message: string): void {
      const vmConsole = consoles.get(vmId);
      if (vmConsole) end(vmId, vmConsole, message);
    },
    /** Viewers attached per VM, for tests and the status page. */
    viewerCounts(): Record<string, number> {
      return Object.fromEntries([...consoles].map(([id, c]) => [id, c.viewers.size]));
    },
    closeAll(): void {
      unsubscribe();
      for (const vmConsole of consoles.values()) vmConsole.close();
      consoles.clear();
    },
  };
}

export type ConsoleHub = ReturnType<typeof createConsoleHub>;
