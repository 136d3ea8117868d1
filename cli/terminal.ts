/**
 * Terminals from the command line: a ticket asked for with the token, then the WebSocket
 * at the path it names (no Origin: the bridge lets a token's ticket through without one).
 * `hangar console` puts the local terminal in raw mode on the serial line (`~.` after a
 * newline leaves, `~~` sends one `~`, as in ssh); `hangar proxy` pipes stdin and stdout to
 * the VM's SSH port for ssh's ProxyCommand.
 */
import WebSocket from "ws";
import type { Config } from "./config.ts";
import { CliError, EXIT, type Client } from "./api.ts";

/** Stay well under the bridge's 64 KiB frame limit. */
const CHUNK = 32 * 1024;
/** Stop reading stdin while this much waits to go out on the socket. */
const HIGH_WATER = 1024 * 1024;

export async function openTerminal(config: Config, api: Client, vmId: string, kind: "console" | "tunnel"): Promise<WebSocket> {
  const { path } = await api.terminal.ticket.mutate({ vmId, kind });
  const url = new URL(path, config.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) =>
      reject(new CliError(`Hangar refused the terminal (HTTP ${res.statusCode}).`, res.statusCode === 403 ? EXIT.FORBIDDEN : EXIT.FAILED)),
    );
    ws.once("error", (error) => reject(new CliError(`Cannot reach Hangar's terminal: ${error.message}`, EXIT.UNREACHABLE)));
  });
  ws.binaryType = "nodebuffer";
  return ws;
}

/** The sentence of an error control message, if `text` is one. */
function controlError(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === "object" && "type" in value && value.type === "error" && "message" in value && typeof value.message === "string")
      return value.message;
  } catch {
    return undefined;
  }
  return undefined;
}

/** Sends `bytes` in frames the bridge takes. */
function sendChunks(ws: WebSocket, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; at += CHUNK) ws.send(bytes.subarray(at, at + CHUNK), { binary: true });
}

/** Resolves with the exit code once the socket closes: 0, or 1 after an error message. */
function closed(ws: WebSocket, onError: (message: string) => void): Promise<number> {
  let failed = false;
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary) return;
    const message = controlError(data.toString("utf8"));
    if (message) {
      failed = true;
      onError(message);
    }
  });
  return new Promise((resolve) => ws.once("close", (code) => resolve(failed || (code !== 1000 && code !== 1005) ? EXIT.FAILED : EXIT.OK)));
}

/** stdin -> the VM's SSH port -> stdout, with back-pressure both ways; resolves with the exit code. */
export async function pipeProxy(ws: WebSocket, input: NodeJS.ReadableStream & { pause(): void; resume(): void }, out: NodeJS.WritableStream): Promise<number> {
  const done = closed(ws, (message) => process.stderr.write(`hangar proxy: ${message}\n`));
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (!binary) return;
    if (!out.write(data)) {
      ws.pause();
      out.once("drain", () => ws.resume());
    }
  });
  input.on("data", (chunk: Buffer) => {
    sendChunks(ws, chunk);
    if (ws.bufferedAmount > HIGH_WATER) {
      input.pause();
      const wait = setInterval(() => {
        if (ws.bufferedAmount <= HIGH_WATER / 4 || ws.readyState !== ws.OPEN) {
          clearInterval(wait);
          input.resume();
        }
      }, 10);
    }
  });
  input.on("end", () => ws.close(1000));
  return done;
}

/**
 * The escape a person types to leave the console: `~.` at the start of a line. Returns what
 * to send and whether to leave; `~~` sends one `~`. Escape sequences (arrow keys, and the
 * terminal's answers to the guest's queries: busybox's shell asks for the cursor position
 * after each prompt, `ESC [ 6 n`, and the answer arrives after the Enter) pass through
 * without ending the start of a line, or `~.` after a prompt would never leave.
 */
export function createEscape() {
  let lineStart = true;
  let tilde = false;
  /** Where in an escape sequence the bytes are: ESC seen, inside CSI (`ESC [`), or SS3 (`ESC O`). */
  let sequence: "none" | "esc" | "csi" | "ss3" = "none";
  return (bytes: Buffer): { send: Buffer; leave: boolean } => {
    const send: number[] = [];
    for (const byte of bytes) {
      if (sequence !== "none") {
        send.push(byte);
        if (sequence === "esc") sequence = byte === 0x5b ? "csi" : byte === 0x4f ? "ss3" : "none";
        else if (sequence === "ss3" || (byte >= 0x40 && byte <= 0x7e)) sequence = "none";
        continue;
      }
      if (tilde) {
        tilde = false;
        if (byte === 0x2e) return { send: Buffer.from(send), leave: true };
        if (byte !== 0x7e) send.push(0x7e);
        if (byte === 0x1b) {
          sequence = "esc";
          send.push(byte);
          lineStart = false;
          continue;
        }
        send.push(byte);
        lineStart = byte === 0x0d || byte === 0x0a;
        continue;
      }
      if (byte === 0x1b) {
        sequence = "esc";
        send.push(byte);
        continue;
      }
      if (lineStart && byte === 0x7e) {
        tilde = true;
        continue;
      }
      send.push(byte);
      lineStart = byte === 0x0d || byte === 0x0a;
    }
    return { send: Buffer.from(send), leave: false };
  };
}

/** The serial console in this terminal until `~.` or the socket closes. */
export async function runConsole(ws: WebSocket): Promise<number> {
  const stdin = process.stdin;
  const done = closed(ws, (message) => process.stderr.write(`\r\n[hangar] ${message}\r\n`));
  process.stderr.write("[hangar] Connected to the serial console; type ~. at the start of a line to leave.\r\n");
  ws.on("message", (data: Buffer, binary: boolean) => binary && process.stdout.write(data));
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const escape = createEscape();
  stdin.on("data", (chunk: Buffer) => {
    const { send, leave } = escape(chunk);
    if (send.length > 0 && ws.readyState === ws.OPEN) sendChunks(ws, send);
    if (leave) ws.close(1000);
  });
  stdin.resume();
  try {
    return await done;
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\r\n[hangar] Console closed.\r\n");
  }
}
