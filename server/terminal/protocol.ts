/**
 * The WebSocket terminal protocol.
 *
 * Opening: `terminal.ticket({vmId, kind})` returns `path`, `/ws/terminal?ticket=…&vm=…&kind=…`.
 * The upgrade is refused with HTTP 403, before anything is attached, when `Origin` is
 * missing or is none of Hangar's public origins (HANGAR_PUBLIC_ORIGIN) and not listed in
 * HANGAR_ALLOWED_ORIGINS (never compared with the client's Host), or when the ticket is unknown, used, older than 30 s, or was
 * issued for another VM or kind. A client that sends no Origin (no browser: browsers always
 * send one) is let through only with a ticket asked for with an API token (the CLI). Frames
 * larger than 64 KiB close the socket.
 *
 * Frames:
 * - Binary, both ways: terminal bytes (keystrokes in, output out).
 * - Text: one JSON control message each.
 *     browser -> server: {"type":"resize","cols":120,"rows":40}   (clamped to 1..500 x 1..200;
 *                                                                   shells only, a serial line has no size)
 *     server -> browser: {"type":"status","state":"Running"}      (the VM's state; "Booting" while a
 *                                                                   shell waits for SSH to answer)
 *                        {"type":"exit","code":0}                 (a shell ended, 128+n for signal n;
 *                                                                   the socket closes next)
 *                        {"type":"error","message":"…"}           (a sentence for the person; the
 *                                                                   socket closes next)
 *
 * Kinds:
 * - console: the VM's serial line, shared by every viewer. A new viewer first receives the
 *   scrollback, then live bytes. It stays open across a stop and start of the VM: the hub
 *   prints a notice and sends status, and the bytes flow again once the VM runs.
 * - shell: an SSH login shell with a PTY; ends with exit.
 * - monitor: qemu's human monitor (HMP); admins only, one terminal per VM at a time.
 * - display: the VM's VGA screen. Binary frames carry RFB (VNC) both ways, unchanged: the
 *   browser speaks RFB 3.8 (noVNC) with the VM's own VNC server, no VNC password (the
 *   ticket is the key). Each viewer has its own connection, all sharing the one screen.
 *   Readers' displays are view-only, enforced on the server: their keys, pointer and
 *   clipboard never reach the VM (server/terminal/rfb-view-only.ts). Only while the VM runs;
 *   the socket closes with an error message when it stops.
 * - tunnel: raw bytes both ways to the VM's SSH port (a TCP connection from the host that runs
 *   the VM), for the caller's own ssh client (`hangar proxy`, ssh's ProxyCommand). The VM's
 *   controllers, while it runs; waits for a booting VM's SSH like a shell. When the SSH
 *   connection ends the socket closes (1000).
 *
 * The server pings every 15 s and drops a peer that did not answer the previous ping, and
 * closes a terminal that received no input for 30 minutes or whose sign-in session ended.
 */

import { MAX_COLS, MAX_ROWS, type ControlMessage } from "../../lib/vocabulary.ts";

export { MAX_COLS, MAX_ROWS, type ControlMessage } from "../../lib/vocabulary.ts";

function clamp(value: number, max: number): number {
  return Math.min(Math.max(Math.round(value), 1), max);
}

export function encodeControl(message: ControlMessage): string {
  return JSON.stringify(message);
}

/** The control message in `text`, or undefined when it is not one (ignored, never fatal). */
export function decodeControl(text: string): ControlMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case "resize":
      if (typeof message.cols !== "number" || typeof message.rows !== "number") return undefined;
      if (!Number.isFinite(message.cols) || !Number.isFinite(message.rows)) return undefined;
      return { type: "resize", cols: clamp(message.cols, MAX_COLS), rows: clamp(message.rows, MAX_ROWS) };
    case "exit":
      return typeof message.code === "number" ? { type: "exit", code: message.code } : undefined;
    case "error":
      return typeof message.message === "string" ? { type: "error", message: message.message } : undefined;
    case "status":
      return typeof message.state === "string" ? { type: "status", state: message.state } : undefined;
    default:
      return undefined;
  }
}
