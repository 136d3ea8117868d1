/**
 * A view-only display: what a viewer who may only read a VM sends to qemu's VNC server
 * passes through this filter, so the limit holds whatever the browser runs (noVNC's
 * viewOnly is the browser's promise, this is the server's). It parses the client side of
 * RFB 3.7/3.8 (RFC 6143 §7.1-7.5) and forwards the handshake and the messages that ask for
 * pictures; keys, pointer, clipboard, resizes and power requests are dropped. Anything it
 * cannot parse ends the display: an unknown message has no known length.
 */

/** Client-to-server message types (RFC 6143 §7.5 and the registered extensions). */
const SET_PIXEL_FORMAT = 0;
const SET_ENCODINGS = 2;
const FRAMEBUFFER_UPDATE_REQUEST = 3;
const KEY_EVENT = 4;
const POINTER_EVENT = 5;
const CLIENT_CUT_TEXT = 6;
const ENABLE_CONTINUOUS_UPDATES = 150;
const CLIENT_FENCE = 248;
const XVP = 250;
const SET_DESKTOP_SIZE = 251;
const QEMU = 255;

export type FilterResult = { forward: Buffer } | { error: string };

type Phase = "version" | "security" | "init" | "messages";
/** A unit at the head of the stream whose length is known (it may not have all arrived). */
type Unit = { length: number; forward: boolean };
type Step = "incomplete" | Unit | { error: string };

/** One filter per connection; push() each chunk the viewer sent, in order. */
export class ViewOnlyFilter {
  private phase: Phase = "version";
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes still to come of a dropped message: discarded as they arrive, never buffered. */
  private skip = 0;

  push(chunk: Buffer): FilterResult {
    const skipped = Math.min(this.skip, chunk.length);
    this.skip -= skipped;
    const rest = chunk.subarray(skipped);
    this.pending = this.pending.length === 0 ? rest : Buffer.concat([this.pending, rest]);
    const forward: Buffer[] = [];
    for (;;) {
      const step = this.next();
      if (step === "incomplete") break;
      if ("error" in step) return step;
      if (step.length > this.pending.length) {
        if (step.forward) break;
        this.skip = step.length - this.pending.length;
        this.pending = Buffer.alloc(0);
        break;
      }
      if (step.forward) forward.push(this.pending.subarray(0, step.length));
      this.pending = this.pending.subarray(step.length);
    }
    return { forward: Buffer.concat(forward) };
  }

  /** The unit at the head of `pending`: its length and whether it passes. */
  private next(): Step {
    const bytes = this.pending;
    if (bytes.length === 0) return "incomplete";
    switch (this.phase) {
      case "version": {
        if (bytes.length < 12) return "incomplete";
        // 3.3 has no security-type byte from the client; qemu offers 3.8 and noVNC takes it.
        if (!/^RFB 003\.00[78]\n$/.test(bytes.subarray(0, 12).toString("latin1"))) return { error: "Only RFB 3.7 and 3.8 clients may view a display." };
        this.phase = "security";
        return { length: 12, forward: true };
      }
      case "security":
        this.phase = "init";
        return { length: 1, forward: true };
      case "init":
        // ClientInit's shared flag: a viewer never asks the others to be disconnected.
        if (bytes[0] !== 1) bytes[0] = 1;
        this.phase = "messages";
        return { length: 1, forward: true };
      case "messages":
        return message(bytes);
    }
  }
}

/** The message at the head of `bytes`, once its header says how long it is. */
function message(bytes: Buffer): Step {
  const sized = (length: number, forward: boolean): Unit => ({ length, forward });
  switch (bytes[0]) {
    case SET_PIXEL_FORMAT:
      return sized(20, true);
    case SET_ENCODINGS:
      return bytes.length < 4 ? "incomplete" : sized(4 + 4 * bytes.readUInt16BE(2), true);
    case FRAMEBUFFER_UPDATE_REQUEST:
      return sized(10, true);
    case ENABLE_CONTINUOUS_UPDATES:
      return sized(10, true);
    case CLIENT_FENCE:
      return bytes.length < 9 ? "incomplete" : sized(9 + (bytes[8] ?? 0), true);
    case KEY_EVENT:
      return sized(8, false);
    case POINTER_EVENT:
      return sized(6, false);
    case CLIENT_CUT_TEXT:
      // A negative length is the extended clipboard format's; its size is the absolute value.
      return bytes.length < 8 ? "incomplete" : sized(8 + Math.abs(bytes.readInt32BE(4)), false);
    case XVP:
      return sized(4, false);
    case SET_DESKTOP_SIZE:
      return bytes.length < 8 ? "incomplete" : sized(8 + 16 * (bytes[6] ?? 0), false);
    case QEMU:
      return qemuMessage(bytes);
    default:
      return { error: `A view-only display does not accept RFB message type ${bytes[0] ?? "?"}.` };
  }
}

/** qemu's own client messages: extended key events and audio control, all dropped. */
function qemuMessage(bytes: Buffer): Step {
  if (bytes.length < 2) return "incomplete";
  const sized = (length: number): Unit => ({ length, forward: false });
  if (bytes[1] === 0) return sized(12);
  if (bytes[1] === 1) {
    if (bytes.length < 4) return "incomplete";
    const operation = bytes.readUInt16BE(2);
    if (operation === 0 || operation === 1) return sized(4);
    if (operation === 2) return sized(10);
  }
  return { error: "A view-only display does not accept this qemu message." };
}
