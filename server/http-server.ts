/**
 * Hangar's one HTTP server: pages (Next), the tRPC API (/api/trpc), its REST form (/api/v1,
 * described at /api/openapi.json), sign-in (/api/auth), /metrics (an admin's token) and
 * WebSocket upgrades (/ws/terminal, Next's own). Every request and upgrade, whatever its
 * path, is first checked for a Host that names Hangar (a DNS-rebinding page's requests name
 * the attacker's host), and every response carries the security headers. The exception is
 * /internal/, where hosts of one cluster call each other at their Host rows' addresses:
 * nothing there answers without a pass signed with the cluster key, which no page has.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { toNodeHandler } from "better-auth/node";
import { LIST_SEED_HEADER, SESSION_SEED_HEADER } from "../lib/vocabulary.ts";
import { TRPC_BASE_PATH, createTrpcHandler, pageSeed } from "./api/http.ts";
import { OPENAPI_DOCUMENT_PATH, REST_BASE_PATH, createRestHandler } from "./api/openapi.ts";
import { TRPC_WS_PATH, createTrpcWebSocket } from "./api/ws.ts";
import { CLIENT_IP_HEADER } from "./auth/better-auth.ts";
import { accessChanged } from "./auth/access.ts";
import { authenticate } from "./auth/principal.ts";
import type { Hangar } from "./hangar.ts";
import { handleMetrics, isMetricsRequest } from "./metrics/http.ts";
import { acceptedHosts, hostAllowed } from "./origins.ts";
import { INTERNAL_IMAGES_PATH } from "./images/copies.ts";
import { INTERNAL_VMS_PATH } from "./cluster/move.ts";
import { TERMINAL_PATH } from "./terminal/bridge.ts";
import { INTERNAL_TERMINAL_PATH } from "./terminal/proxy.ts";

/** The dashboard: Next's request and upgrade handlers (main.ts), or a stand-in in tests. */
export interface Pages {
  /** Reads the CSP nonce from the request's Content-Security-Policy header and puts it on its scripts. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Next's dev server reloads pages over a WebSocket. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
}

export interface HttpServerOptions {
  hangar: Hangar;
  pages: Pages;
  /** Next's dev server needs eval (React rebuilds server error stacks with it). */
  dev: boolean;
}

/**
 * The only better-auth endpoints served. Its others (change-password, list-sessions,
 * revoke-other-sessions, update-user and the like) would go around Hangar's rules: the
 * password lockout, the audit log, ending other sessions, showing no session token.
 * Hangar has its own procedures for those.
 */
const AUTH_ENDPOINTS = new Set(["/api/auth/sign-in/email", "/api/auth/sign-out"]);
const AUTH_BODY_BYTES = 16 * 1024;
export const NO_AUTH_ENDPOINT_MESSAGE =
  "No such endpoint. Sign in at /api/auth/sign-in/email and out at /api/auth/sign-out; passwords, sessions and tokens are on the Account page and in the API.";
export const WRONG_HOST_MESSAGE = "This server does not answer to that host name; open Hangar at one of its public origins (HANGAR_PUBLIC_ORIGIN).";

/**
 * The policy for every response. Pages get a fresh nonce per request: Next's App Router
 * bootstraps with inline scripts, and it stamps each of them with the nonce it finds in
 * the request's policy. Styles stay 'unsafe-inline' for Next's and xterm's style
 * attributes. 'self' covers ws: and wss: to this host for the terminal.
 */
export function contentSecurityPolicy({ nonce, dev }: { nonce?: string; dev: boolean }): string {
  const scripts = ["'self'", ...(nonce ? [`'nonce-${nonce}'`] : []), ...(dev ? ["'unsafe-eval'"] : [])];
  return [
    "default-src 'self'",
    `script-src ${scripts.join(" ")}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join("; ");
}

function setSecurityHeaders(res: ServerResponse, policy: string): void {
  res.setHeader("Content-Security-Policy", policy);
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "same-origin");
}

export const PAGE_METHOD_MESSAGE = "Pages answer GET and HEAD; the API is at /api/trpc and /api/v1.";
export const BAD_TARGET_MESSAGE = "Send the request to a path on this server, such as /, percent-encoded as UTF-8.";

/**
 * Leaves every request with a path as its target (origin form), which all routing reads.
 * A full URL as the target (absolute form, as a proxy sends it) names the host itself:
 * RFC 9112 has that authority stand for the Host header, so the Host check applies to it.
 * Anything else (`*`, another scheme), or a path whose percent-encoding is not UTF-8 (Next
 * fails such a page's route with a 500), is false: answered with 400.
 */
function toOriginForm(req: IncomingMessage): boolean {
  const target = req.url ?? "";
  if (!target.startsWith("/")) {
    const url = URL.canParse(target) ? new URL(target) : undefined;
    if (url?.protocol !== "http:" && url?.protocol !== "https:") return false;
    req.headers.host = url.host;
    req.url = `${url.pathname}${url.search}`;
  }
  try {
    decodeURIComponent((req.url ?? "").split("?")[0] ?? "");
    return true;
  } catch {
    return false;
  }
}

/** Answers an upgrade request with `status` ("421 Misdirected Request") and a sentence, and closes. */
function refuseUpgrade(socket: Duplex, status: string, sentence: string): void {
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(sentence)}\r\n\r\n${sentence}`,
  );
}

/** Hangar's request and upgrade handling, on `server` (a new one unless given). */
export function createHttpServer({ hangar, pages, dev }: HttpServerOptions, server: Server = createServer()): Server {
  const hosts = acceptedHosts(hangar.env.publicOrigins);
  const handleTrpc = createTrpcHandler(hangar);
  const rest = createRestHandler(hangar);
  const handleAuth = toNodeHandler(hangar.auth);
  const trpcWebSocket = createTrpcWebSocket(hangar);
  server.on("close", () => trpcWebSocket.close());

  function handleAuthRequest(req: IncomingMessage, res: ServerResponse): void {
    req.headers[CLIENT_IP_HEADER] = req.socket.remoteAddress ?? "unknown";
    const path = (req.url ?? "").split("?")[0] ?? "";
    const refuse = (status: number, message: string) =>
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", Connection: "close" }).end(JSON.stringify({ message }));
    if (!AUTH_ENDPOINTS.has(path)) return void refuse(404, NO_AUTH_ENDPOINT_MESSAGE);
    // better-auth reads a body of any size: a sign-in is an address and a password, sent with its length.
    if (req.method !== "GET" && req.method !== "HEAD") {
      const length = req.headers["content-length"];
      if (length === undefined) return void refuse(411, "Send the sign-in with a Content-Length.");
      if (Number(length) > AUTH_BODY_BYTES) return void refuse(413, "The request body is larger than a sign-in needs.");
    }
    // Signing out ends the terminals and the API WebSocket opened from that session at once.
    if (path === "/api/auth/sign-out") {
      void authenticate(hangar.db, hangar.auth, req.headers).then((principal) => {
        if (principal?.sessionId) {
          res.once("finish", () => {
            hangar.terminals.closeForSession(principal.sessionId ?? "");
            accessChanged(hangar.db);
          });
        }
        void handleAuth(req, res);
      });
      return;
    }
    void handleAuth(req, res);
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!toOriginForm(req)) {
      setSecurityHeaders(res, contentSecurityPolicy({ dev }));
      res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", Connection: "close" }).end(BAD_TARGET_MESSAGE);
      return;
    }
    const url = req.url ?? "/";
    const isRest = url === REST_BASE_PATH || url.startsWith(`${REST_BASE_PATH}/`) || url.startsWith(`${REST_BASE_PATH}?`);
    const isDocument = url.split("?")[0] === OPENAPI_DOCUMENT_PATH;
    const isPage = !url.startsWith(TRPC_BASE_PATH) && !url.startsWith("/api/auth/") && !isRest && !isDocument;
    const nonce = isPage ? randomBytes(16).toString("base64") : undefined;
    const policy = contentSecurityPolicy({ nonce, dev });
    setSecurityHeaders(res, policy);
    if (req.url?.startsWith(INTERNAL_IMAGES_PATH)) {
      hangar.copies.serve(req, res);
      return;
    }
    if (req.url?.startsWith(INTERNAL_VMS_PATH)) {
      hangar.moves.serve(req, res);
      return;
    }
    if (!hostAllowed(req.headers.host, hosts)) {
      res.writeHead(421, { "Content-Type": "text/plain; charset=utf-8" }).end(WRONG_HOST_MESSAGE);
      return;
    }
    if (req.url?.startsWith(TRPC_BASE_PATH)) {
      handleTrpc(req, res);
      return;
    }
    if (isRest) {
      rest.handleRest(req, res);
      return;
    }
    if (isDocument) {
      rest.handleDocument(req, res);
      return;
    }
    if (req.url?.startsWith("/api/auth/")) {
      handleAuthRequest(req, res);
      return;
    }
    if (isMetricsRequest(req)) {
      void handleMetrics(hangar.db, hangar.metrics, req, res);
      return;
    }
    // Pages and their files are read, never sent to (no server actions): Next would render a
    // page for a DELETE or a TRACE too. Its development tools post to /__nextjs… paths.
    if (req.method !== "GET" && req.method !== "HEAD" && !url.startsWith("/__nextjs")) {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end(PAGE_METHOD_MESSAGE);
      return;
    }
    // Next takes the nonce from the request's policy; a client's own policy header is replaced.
    req.headers["content-security-policy"] = policy;
    delete req.headers["content-security-policy-report-only"];
    delete req.headers[SESSION_SEED_HEADER];
    delete req.headers[LIST_SEED_HEADER];
    // A page a browser opens is told who is signed in (app/layout.tsx), and the inventory
    // page its first rows, saving the tab round trips before it shows them; scripts, styles
    // and route payloads are not.
    if (req.headers["sec-fetch-dest"] !== "document") return void pages.handle(req, res);
    void pageSeed(hangar, req, req.url?.split("?")[0] === "/")
      .then((seed) => {
        req.headers[SESSION_SEED_HEADER] = seed.session;
        if (seed.list) req.headers[LIST_SEED_HEADER] = seed.list;
      })
      .catch(() => undefined)
      .then(() => pages.handle(req, res));
  });

  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => undefined);
    if (!toOriginForm(req)) return refuseUpgrade(socket, "400 Bad Request", BAD_TARGET_MESSAGE);
    if (req.url?.startsWith(INTERNAL_TERMINAL_PATH)) {
      hangar.terminals.handleUpgrade(req, socket, head);
      return;
    }
    if (!hostAllowed(req.headers.host, hosts)) return refuseUpgrade(socket, "421 Misdirected Request", WRONG_HOST_MESSAGE);
    if (req.url?.startsWith(TERMINAL_PATH)) hangar.terminals.handleUpgrade(req, socket, head);
    else if (req.url?.startsWith(TRPC_WS_PATH)) trpcWebSocket.handleUpgrade(req, socket, head);
    else void pages.handleUpgrade(req, socket, head);
  });
  return server;
}
