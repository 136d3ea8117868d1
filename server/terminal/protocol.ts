/**
 * The WebSocket terminal protocol (/ws/terminal?ticket=…).
 *
 * - Binary frames, both ways: terminal bytes (keystrokes in, output out).
 * - Text frames: one JSON control message each.
 *     browser -> server: {"type":"resize","cols":120,"rows":40}   (clamped to 1..500 x 1..200)
 *     server -> browser: {"type":"exit","code":0}                 (a shell ended; the socket closes)
 *                        {"type":"error","message":"…"}           (a sentence for the person)
 *                        {"type":"status","state":"Running"}      (the VM's state changed)
 * - A new console viewer first receives the scrollback, then live bytes.
 */

export type ControlMessage =
  | { type: "resize"; cols: number; rows: number }
  | { type: "exit"; code: number }
  | { type: "error"; message: string }
  | { type: "status"; state: string };

export const MAX_COLS = 500;
export const MAX_ROWS = 200;

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
