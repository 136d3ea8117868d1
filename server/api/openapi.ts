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
import { z } from "zod";
import type { Hangar } from "../hangar.ts";
import { BODY_TOO_LARGE, MAX_BODY_BYTES, closeAfterReply, readBody } from "./body.ts";
import { contextFor } from "./http.ts";
import { appRouter } from "./root.ts";

export const REST_BASE_PATH = "/api/v1";
export const OPENAPI_DOCUMENT_PATH = "/api/openapi.json";

/** An error answered before the library runs, in the shape of its own: `{ message, code, data }`. */
function refuse(res: ServerResponse, status: 400 | 413, message: string): void {
  const code = status === 400 ? "BAD_REQUEST" : "PAYLOAD_TOO_LARGE";
  res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify({ message, code, data: { code, httpStatus: status, domainCode: null } }));
}

/**
 * Why the library must not see this query string, or undefined. It collects parameters in a
 * plain object, so one named like an Object.prototype member (constructor, __proto__…) is a 500.
 */
function queryProblem(url: string): string | undefined {
  const query = url.indexOf("?") === -1 ? "" : url.slice(url.indexOf("?") + 1);
  for (const key of new URLSearchParams(query).keys()) {
    if (key in Object.prototype) return `The query parameter "${key.slice(0, 64)}" is not one any route takes; leave it out.`;
  }
  return undefined;
}

/**
 * The body the library gets, or a sentence saying why there is none. The library parses it
 * itself, turning bad JSON into a 500 and any JSON that is not an object (null, "str", 1…)
 * into no fields at all; here a body that is present must be a JSON object. An empty body
 * means no fields: the route's schema says whether it needs some.
 */
function jsonObjectBody(req: IncomingMessage, text: string): { body: string } | { problem: string } {
  const type = req.headers["content-type"];
  if (text.trim() === "") {
    // The library insists on a JSON content type even where nothing was sent.
    if (type === undefined) req.headers["content-type"] = "application/json";
    return { body: "{}" };
  }
  // Another content type is the library's 415 to answer.
  if (!type?.toLowerCase().startsWith("application/json")) return { body: "" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: "The request body is not valid JSON; send a JSON object of the route's fields, such as {}." };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    return { problem: `The request body must be a JSON object of the route's fields, such as {}, not ${got}.` };
  }
  return { body: text };
}

/**
 * The library types a router's meta as an open record, which a meta with a required field
 * (`permission`) cannot be assigned to as a whole; it reads only `meta.openapi`, which Meta
 * declares with the library's own type.
 */
const router = appRouter as unknown as OpenApiRouter;

/**
 * trpc-to-openapi turns on zod's coercion inside the shared input schemas at a route's first
 * REST call (its coerceSchema), for tRPC calls as well from then on; for a boolean that is
 * Boolean(value), so "false" becomes true. Booleans keep it off: a REST body carries JSON
 * booleans, and no GET route takes one. Numbers keep the library's coercion (query strings).
 */
function keepBooleansUncoerced(schema: unknown): void {
  if (!(schema instanceof z.ZodType)) return;
  const def = schema._zod.def;
  if (def.type === "boolean") {
    Object.defineProperty(def, "coerce", { get: () => false, set: () => undefined });
  } else if (schema instanceof z.ZodObject) {
    for (const field of Object.values(schema.shape)) keepBooleansUncoerced(field);
  } else if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    keepBooleansUncoerced(schema.unwrap());
  }
}
for (const procedure of Object.values(appRouter._def.procedures as unknown as Record<string, { _def: { inputs?: unknown[] } }>)) {
  for (const input of procedure._def.inputs ?? []) keepBooleansUncoerced(input);
}

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
    onError({ error }) {
      // With a ZodError as the cause the library answers "Input validation failed" and zod's raw
      // issues; the errorFormatter's sentences about them are already the error's message.
      if (error.cause instanceof Error && error.cause.name === "ZodError") Object.defineProperty(error, "cause", { value: undefined });
    },
  });
  // Made once: the router does not change while the process runs.
  const document = JSON.stringify(openApiDocument(hangar.env.publicOrigins[0] ?? `http://${hangar.env.HOST}:${hangar.env.PORT}`));
  return {
    /** Requests under /api/v1: the procedure's route is the path after the prefix. */
    handleRest(req: IncomingMessage, res: ServerResponse): void {
      req.url = req.url?.slice(REST_BASE_PATH.length) || "/";
      const problem = queryProblem(req.url);
      if (problem) return refuse(res, 400, problem);
      if (req.method === "GET" || req.method === "HEAD") {
        void request.run(req, () => handler(req, res));
        return;
      }
      readBody(req).then(
        (text) => {
          if (text === undefined) {
            closeAfterReply(res);
            return refuse(res, 413, BODY_TOO_LARGE);
          }
          const checked = jsonObjectBody(req, text);
          if ("problem" in checked) return refuse(res, 400, checked.problem);
          // The library reads a string body from here instead of the (already read) stream.
          Object.assign(req, { body: checked.body });
          void request.run(req, () => handler(req, res));
        },
        () => res.destroy(),
      );
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
