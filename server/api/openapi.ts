/**
 * The REST surface: the procedures whose meta names an `openapi` route, served under
 * /api/v1 by trpc-to-openapi from the same router (same context, so the same session or
 * Bearer token, permissions and cross-site check of changes), and their OpenAPI 3.1
 * document at /api/openapi.json. Errors keep the errorFormatter's message and tRPC code;
 * the HTTP status follows the code (BAD_REQUEST 400, UNAUTHORIZED 401, FORBIDDEN 403,
 * NOT_FOUND 404, TIMEOUT 408, CONFLICT 409, PRECONDITION_FAILED 412, else 500).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createOpenApiHttpHandler, generateOpenApiDocument, type OpenApiRouter } from "trpc-to-openapi";
import type { Hangar } from "../hangar.ts";
import { contextFor } from "./http.ts";
import { appRouter } from "./root.ts";

export const REST_BASE_PATH = "/api/v1";
export const OPENAPI_DOCUMENT_PATH = "/api/openapi.json";
/** Changes are small JSON bodies; larger ones are refused with 413. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The library types a router's meta as an open record, which a meta with a required field
 * (`permission`) cannot be assigned to as a whole; it reads only `meta.openapi`, which Meta
 * declares with the library's own type.
 */
const router = appRouter as unknown as OpenApiRouter;

/** The document, with `origin` (Hangar's canonical public origin) as its server. */
export function openApiDocument(origin: string) {
  return generateOpenApiDocument(router, {
    title: "Hangar",
    version: "1",
    description:
      "QEMU virtual machines for a team. Send an API token (the Tokens page) as `Authorization: Bearer <token>`; calls act with its owner's role. The same procedures are served over tRPC at /api/trpc.",
    baseUrl: `${origin}${REST_BASE_PATH}`,
    securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API token from the Tokens page" } },
  });
}

export function createRestHandler(hangar: Hangar) {
  // The library hands createContext its own copy of the request (a fetch Request, whatever
  // its type says); the context is made from the Node request itself, as for /api/trpc.
  const request = new AsyncLocalStorage<IncomingMessage>();
  const handler = createOpenApiHttpHandler({
    router,
    createContext: () => {
      const req = request.getStore();
      if (!req) throw new Error("REST call outside handleRest");
      return contextFor(hangar, req);
    },
    maxBodySize: MAX_BODY_BYTES,
  });
  // Made once: the router does not change while the process runs.
  const document = JSON.stringify(openApiDocument(hangar.env.publicOrigins[0] ?? `http://${hangar.env.HOST}:${hangar.env.PORT}`));
  return {
    /** Requests under /api/v1: the procedure's route is the path after the prefix. */
    handleRest(req: IncomingMessage, res: ServerResponse): void {
      req.url = req.url?.slice(REST_BASE_PATH.length) || "/";
      void request.run(req, () => handler(req, res));
    },
    handleDocument(req: IncomingMessage, res: ServerResponse): void {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("The OpenAPI document is read with GET.");
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache" }).end(req.method === "HEAD" ? undefined : document);
    },
  };
}
