/**
 * The display terminal: a plain byte pipe between one browser's WebSocket and its own
 * connection to the VM's VNC server (qemu serves every viewer a connection of its own, all
 * sharing the screen). RFB is the browser's business; the server only reads the viewer's
 * side when the viewer may not type (rfb-view-only.ts). Back-pressure as in the console
 * hub: the VNC socket is not read while the WebSocket has more than HIGH_WATER queued.
 * The SSH tunnel is the same pipe to the VM's SSH port, with its own closing words.
 */
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { HIGH_WATER, LOW_WATER } from "./console-hub.ts";
import { ViewOnlyFilter } from "./rfb-view-only.ts";

export interface DisplayPeer {
  sendBytes(bytes: Buffer): void;
  /** Bytes queued for the browser and not yet sent (ws.bufferedAmount). */
  bufferedAmount(): number;
  /** Ends the terminal, with a sentence for the person when there is one. */
  close(message?: string): void;
}

export interface DisplayPipe {
  /** Bytes from the browser (RFB client messages). */
  write(bytes: Buffer): void;
  close(): void;
}

const DISPLAY_CLOSED = "The VM's display closed: the VM stopped or restarted. Reconnect once it runs.";

export function pipeDisplay(
  screen: Socket,
  peer: DisplayPeer,
  { readOnly, drainCheckMs = 20, closedMessage = DISPLAY_CLOSED }: { readOnly: boolean; drainCheckMs?: number; closedMessage?: string },
): DisplayPipe {
  const filter = readOnly ? new ViewOnlyFilter() : undefined;
  let closed = false;
  let draining = false;

  async function drain(): Promise<void> {
    draining = true;
    screen.pause();
    while (!closed && peer.bufferedAmount() > LOW_WATER) await sleep(drainCheckMs);
    draining = false;
    if (!closed) screen.resume();
  }

  screen.on("data", (bytes: Buffer) => {
    peer.sendBytes(bytes);
    if (!draining && peer.bufferedAmount() > HIGH_WATER) void drain();
  });
  screen.on("error", () => undefined);
  screen.on("close", () => {
    if (!closed) peer.close(closedMessage || undefined);
  });

  return {
    write(bytes) {
      if (closed) return;
      if (!filter) {
        screen.write(bytes);
        return;
      }
      const result = filter.push(bytes);
      if ("error" in result) return peer.close(result.error);
      if (result.forward.length > 0) screen.write(result.forward);
    },
    close() {
      closed = true;
      screen.destroy();
    },
  };
}
