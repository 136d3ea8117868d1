/**
 * The tRPC API as a Node request handler: context from the session cookie or bearer token,
 * and the headers the cross-site check of mutations reads.
 */
import type { IncomingMessage } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { actorLabel } from "../auth/permissions.ts";
import { authenticate } from "../auth/principal.ts";
import type { Hangar } from "../hangar.ts";
import { appRouter } from "./root.ts";
import type { Context, Transport } from "./trpc.ts";

export const TRPC_BASE_PATH = "/api/trpc/";

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/** Who asks and how, from the request (or a WebSocket's upgrade request). */
export async function contextFor(hangar: Hangar, req: IncomingMessage): Promise<Context> {
  const principal = await authenticate(hangar.db, hangar.auth, req.headers);
  const transport: Transport = {
    kind: "http",
    origin: req.headers.origin,
    fetchSite: single(req.headers["sec-fetch-site"]),
    bearer: req.headers.authorization?.startsWith("Bearer ") ?? false,
  };
  return { hangar, transport, principal, actor: principal ? actorLabel(principal) : "anonymous" };
}

export function createTrpcHandler(hangar: Hangar) {
  return createHTTPHandler({
    router: appRouter,
    basePath: TRPC_BASE_PATH,
    createContext: ({ req }) => contextFor(hangar, req),
  });
}
