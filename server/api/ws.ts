/**
 * The tRPC API over one WebSocket per tab at /api/trpc-ws: the dashboard's live
 * subscriptions go here instead of one SSE stream per tab, since a browser holds at most six
 * HTTP/1.1 connections per host and six tabs of long-lived streams would starve every other
 * request. WebSockets do not count against that limit. The upgrade is checked like the
 * terminals': an allowed Origin (a cross-site page could otherwise ride the cookie), then
 * the same context as HTTP calls (session cookie or bearer token).
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import { WebSocketServer } from "ws";
import type { Hangar } from "../hangar.ts";
import { originAllowed } from "../origins.ts";
import { contextFor } from "./http.ts";
import { appRouter } from "./root.ts";

export const TRPC_WS_PATH = "/api/trpc-ws";
/** Subscriptions and small calls only: larger messages are refused. */
const MAX_MESSAGE_BYTES = 256 * 1024;

export function createTrpcWebSocket(hangar: Hangar) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const handler = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: ({ req }) => contextFor(hangar, req),
    keepAlive: { enabled: true, pingMs: 20_000, pongWaitMs: 10_000 },
  });
  wss.on("connection", (ws) => ws.on("error", () => ws.terminate()));

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
      const service = req.headers.origin === undefined && req.headers.authorization?.startsWith("Bearer ");
      if (!service && !originAllowed(req.headers.origin, hangar.env.allowedOrigins)) return refuse(socket, "403 Forbidden", "Origin not allowed.");
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    },
    close(): void {
      handler.broadcastReconnectNotification();
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}
