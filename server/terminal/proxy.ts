/**
 * Terminals of VMs on another host. The host a terminal's WebSocket lands on checks the
 * Origin and redeems the ticket as for its own VMs; then it opens a WebSocket to the owning
 * host's internal endpoint, carrying the grant in a pass signed with the cluster key (30 s,
 * single use, bound to the same user, VM and kind as the ticket), and pipes frames both
 * ways as they are: binary bytes and text control messages. The owner accepts no internal
 * connection without a valid pass, and serves it as a local terminal.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket, type RawData } from "ws";
import { CLUSTER_HEADER, issuePass } from "../auth/cluster-secret.ts";
import { HIGH_WATER, LOW_WATER } from "./console-hub.ts";
import { encodeControl } from "./protocol.ts";
import type { TicketGrant } from "./tickets.ts";

/** The owning host's endpoint for terminals proxied by its peers. */
export const INTERNAL_TERMINAL_PATH = "/internal/terminal";
/** The purpose a pass for a proxied terminal names. */
export const TERMINAL_PASS = "terminal";
/** How long the owning host may take to accept the connection. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface Owner {
  name: string;
  /** http://address:port, from its Host row. */
  apiAddress: string;
}

/** A message's bytes as one Buffer; one that already is (ws's usual) is passed on without a copy. */
export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** Close codes a peer may not send itself (1005, 1006, 1015) become 1011 when passed on. */
const passable = (code: number) =>
  code === 1000 || (code >= 3000 && code < 5000) || (code > 1000 && code < 1015 && code !== 1005 && code !== 1006) ? code : 1011;

/**
 * Pipes the browser's socket `client` to `owner`'s terminal for `grant`. Resolves once the
 * owner accepted (or refused: the browser then hears why, in words, and the socket closes).
 */
export async function proxyTerminal(client: WebSocket, grant: TicketGrant, owner: Owner, key: Buffer): Promise<void> {
  const url = new URL(INTERNAL_TERMINAL_PATH, owner.apiAddress);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const upstream = new WebSocket(url, {
    headers: { [CLUSTER_HEADER]: issuePass(key, TERMINAL_PASS, grant) },
    handshakeTimeout: CONNECT_TIMEOUT_MS,
    maxPayload: 16 * 1024 * 1024,
  });
  upstream.on("error", () => undefined);

  // What the browser sends before the owner accepted waits for it.
  const early: [Buffer, boolean][] = [];
  let clientClosed = false;
  client.on("message", (data: RawData, binary: boolean) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(toBuffer(data), { binary });
    else if (early.length < 256) early.push([toBuffer(data), binary]);
  });
  client.on("close", () => {
    clientClosed = true;
    upstream.terminate();
  });

  // The owner's bytes wait while the browser is slow (a display sends whole screens).
  let draining = false;
  async function drain(): Promise<void> {
    draining = true;
    upstream.pause();
    while (!clientClosed && client.bufferedAmount > LOW_WATER) await sleep(20);
    draining = false;
    if (!clientClosed) upstream.resume();
  }
  upstream.on("message", (data: RawData, binary: boolean) => {
    if (client.readyState !== WebSocket.OPEN) return;
    client.send(toBuffer(data), { binary });
    if (!draining && client.bufferedAmount > HIGH_WATER) void drain();
  });
  upstream.on("close", (code: number) => {
    if (client.readyState !== WebSocket.OPEN) return;
    // No close frame (1006): the owning host went away mid-session (killed, or the network
    // between); the browser is told so, not just shown a closed socket.
    if (code === 1006) {
      client.send(
        encodeControl({
          type: "error",
          message: `The connection to host ${owner.name}, where this VM runs, was lost; open the terminal again (if that host is down, once it is back).`,
        }),
      );
    }
    client.close(passable(code));
  });

  await new Promise<void>((resolve) => {
    upstream.once("open", () => {
      for (const [bytes, binary] of early.splice(0)) upstream.send(bytes, { binary });
      resolve();
    });
    upstream.once("error", () => {
      if (client.readyState === WebSocket.OPEN) {
        client.send(encodeControl({ type: "error", message: `Host ${owner.name}, where this VM runs, does not answer; try again shortly.` }));
        client.close(1011);
      }
      resolve();
    });
  });
}
