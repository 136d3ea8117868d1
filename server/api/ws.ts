/**
 * The tRPC API over one WebSocket per tab at /api/trpc-ws: the dashboard's live
 * subscriptions go here instead of one SSE stream per tab, since a browser holds at most six
 * HTTP/1.1 connections per host and six tabs of long-lived streams would starve every other
 * request. WebSockets do not count against that limit. The upgrade is checked like the
 * terminals': an allowed Origin (a cross-site page could otherwise ride the cookie), then
 * the same context as HTTP calls (session cookie or bearer token). The socket outlives the
 * credentials it opened with: each call reads its caller again (trpc.ts), and a socket whose
 * caller is no longer who it was (signed out, token revoked, user disabled, demoted or
 * removed) is closed, ending its subscriptions; the client reconnects as whoever it is now.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import { WebSocketServer, type WebSocket } from "ws";
import { onAccessChange } from "../auth/access.ts";
import type { Principal } from "../auth/permissions.ts";
import { authenticate, bearerToken } from "../auth/principal.ts";
import type { Hangar } from "../hangar.ts";
import { originAllowed } from "../origins.ts";
import { contextFor } from "./http.ts";
import { appRouter } from "./root.ts";

export const TRPC_WS_PATH = "/api/trpc-ws";
/** Subscriptions and small calls only: larger messages are refused. */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** How often every socket's caller is read again, for changes made on other hosts. */
const RECHECK_MS = 10_000;
/** The close code for a socket whose caller changed (4000-4999: for applications). */
export const ACCESS_CHANGED_CLOSE = 4001;

/** What the socket may do, as a comparable string ("" for nobody). */
function accessOf(principal: Principal | null): string {
  if (!principal) return "";
  return [principal.userId, principal.role, principal.via, principal.sessionId ?? principal.tokenId ?? "", principal.readOnly ? "read-only" : ""].join(" ");
}

export function createTrpcWebSocket(hangar: Hangar) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const callerOf = (req: IncomingMessage) => authenticate(hangar.db, hangar.auth, req.headers);
  const handler = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: async ({ req, res: ws }) => {
      const context = await contextFor(hangar, req);
      // The caller as the socket got it: the sweeps compare who it is now with this.
      sockets.set(ws, { req, access: accessOf(context.principal) });
      ws.once("close", () => sockets.delete(ws));
      return { ...context, recheck: () => callerOf(req) };
    },
    keepAlive: { enabled: true, pingMs: 20_000, pongWaitMs: 10_000 },
  });
  /** Each open socket's request, and what its caller could do when it connected. */
  const sockets = new Map<WebSocket, { req: IncomingMessage; access: string }>();
  wss.on("connection", (ws) => ws.on("error", () => ws.terminate()));
  async function recheckAll(): Promise<void> {
    await Promise.all(
      [...sockets].map(async ([ws, { req, access }]) => {
        const now = await callerOf(req).then(accessOf, () => undefined);
        // A database that does not answer proves nothing: the next sweep asks again.
        if (now !== undefined && now !== access) ws.close(ACCESS_CHANGED_CLOSE, "Your access changed; reconnect.");
      }),
    );
  }
  const recheck = () => void recheckAll();
  const timer = setInterval(recheck, RECHECK_MS);
  timer.unref();
  const stopListening = onAccessChange(hangar.db, recheck);

  function refuse(socket: Duplex, status: string, reason: string): void {
    socket.on("error", () => undefined);
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
  }

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      socket.on("error", () => socket.destroy());
      const url = new URL(req.url ?? "/", "http://hangar");
      if (url.pathname !== TRPC_WS_PATH) return refuse(socket, "404 Not Found", "No such WebSocket endpoint.");
      // Browsers always send Origin on a WebSocket; a service without one must bring a token.
      const service = req.headers.origin === undefined && bearerToken(req.headers.authorization) !== undefined;
      if (!service && !originAllowed(req.headers.origin, hangar.env.allowedOrigins)) return refuse(socket, "403 Forbidden", "Origin not allowed.");
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    },
    close(): void {
      clearInterval(timer);
      stopListening();
      handler.broadcastReconnectNotification();
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}
