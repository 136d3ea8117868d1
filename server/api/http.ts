/**
 * The tRPC API as a Node request handler: context from the session cookie or bearer token,
 * and the headers the cross-site check of mutations reads. Bodies over 1 MiB get 413 (body.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TRPCError } from "@trpc/server";
import superjson from "superjson";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { firstVmListQuery, MAX_BATCH_CALLS } from "../../lib/vocabulary.ts";
import { actorLabel } from "../auth/permissions.ts";
import { authenticate, bearerToken } from "../auth/principal.ts";
import type { Hangar } from "../hangar.ts";
import { timeMark } from "../vms/changes.ts";
import { BODY_TOO_LARGE, closeAfterReply, readBody } from "./body.ts";
import { compressJson, createListResponses } from "./responses.ts";
import { appRouter, createCaller } from "./root.ts";
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
    bearer: bearerToken(req.headers.authorization) !== undefined,
  };
  return { hangar, transport, principal, actor: principal ? actorLabel(principal) : "anonymous" };
}

/**
 * What a page's first render takes from the server (superjson, URI-encoded): the caller's
 * account.me answer (SESSION_SEED_HEADER) and, for the inventory page, the first page of
 * its list (LIST_SEED_HEADER), read as the caller with the caller's permissions.
 */
export async function pageSeed(hangar: Hangar, req: IncomingMessage, inventory: boolean): Promise<{ session: string; list?: string }> {
  const caller = createCaller(await contextFor(hangar, req));
  const me = await caller.account.me();
  const session = encodeURIComponent(superjson.stringify(me));
  if (!inventory || !me.user) return { session };
  // Taken before the read: the tab's live stream starts from it, and is sent what changed since.
  // The page's ages are counted to it too, by the server's render and by the tab's first.
  const readAt = Date.now();
  const resumeFrom = timeMark(readAt);
  // Without it the page asks as it did before: a failed read here is not the page's failure.
  const page = await caller.vm.list(firstVmListQuery(me.user.role)).catch(() => undefined);
  return page ? { session, list: encodeURIComponent(superjson.stringify({ resumeFrom, readAt, page })) } : { session };
}

/** How many calls a request to TRPC_BASE_PATH carries: its comma-separated paths when it is a batch. */
function batchLength(url: string | undefined): number {
  const { pathname, searchParams } = new URL(url ?? "/", "http://localhost");
  return searchParams.get("batch") === "1" ? pathname.split(",").length : 1;
}

/**
 * The handler: vm.list GETs from the shared snapshot (ETag, 304), everything else through
 * tRPC; JSON answers compressed when the client accepts it.
 */
export function createTrpcHandler(hangar: Hangar) {
  const handle = createHTTPHandler({
    router: appRouter,
    basePath: TRPC_BASE_PATH,
    createContext: ({ req }) => contextFor(hangar, req),
    // Before tRPC and the context: a batch of more than MAX_BATCH_CALLS is refused unread,
    // and the body is read within the limit (tRPC reads any size; it takes a string body as
    // the request's). An oversized one fails every call with 413.
    middleware: (req, res, next: (error?: TRPCError) => void) => {
      const calls = batchLength(req.url);
      if (calls > MAX_BATCH_CALLS) {
        closeAfterReply(res);
        return next(
          new TRPCError({
            code: "BAD_REQUEST",
            message: `A batch carries at most ${MAX_BATCH_CALLS} calls (this one has ${calls}); send the rest in another request.`,
          }),
        );
      }
      if (req.method === "GET" || req.method === "HEAD") return next();
      readBody(req).then(
        (text) => {
          Object.assign(req, { body: text ?? "" });
          if (text !== undefined) return next();
          closeAfterReply(res);
          next(new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: BODY_TOO_LARGE }));
        },
        () => res.destroy(),
      );
    },
  });
  const serveList = createListResponses(TRPC_BASE_PATH, (req) => contextFor(hangar, req));
  const viaTrpc = (req: IncomingMessage, res: ServerResponse) => {
    compressJson(req, res);
    return handle(req, res);
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    void serveList(req, res).then(
      (served) => (served ? undefined : viaTrpc(req, res)),
      () => (res.headersSent ? res.destroy() : viaTrpc(req, res)),
    );
  };
}
