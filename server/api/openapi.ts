/**
 * The REST surface: the procedures whose meta names an `openapi` route, served under
 * /api/v1 by trpc-to-openapi from the same router (same context, so the same session or
 * Bearer token, permissions and cross-site check of changes), and their OpenAPI 3.1
 * document at /api/openapi.json. Errors keep the errorFormatter's message and tRPC code;
 * the HTTP status follows the code (BAD_REQUEST 400, UNAUTHORIZED 401, FORBIDDEN 403,
 * NOT_FOUND 404, TIMEOUT 408, CONFLICT 409, PRECONDITION_FAILED 412, else 500), and the
 * document describes that error body (the library's own schema leaves out `data`). Before the
 * library runs, in the same shape: an unknown route 404, a known one with another method 405,
 * and for a POST a query string, a body that is not a JSON object (415 when not sent as JSON)
 * or one naming a field the route does not take 400, since the library would drop them unseen.
 * Answers are plain JSON: dates as ISO strings, bigints (image sizes) as numbers (restJson).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createOpenApiHttpHandler, generateOpenApiDocument, type OpenApiRouter } from "trpc-to-openapi";
import { z } from "zod";
import { ERROR_CODES } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { BODY_TOO_LARGE, MAX_BODY_BYTES, closeAfterReply, readBody } from "./body.ts";
import { contextFor } from "./http.ts";
import { compressJson, notModified } from "./responses.ts";
import { appRouter } from "./root.ts";
import type { Meta } from "./trpc.ts";

export const REST_BASE_PATH = "/api/v1";
export const OPENAPI_DOCUMENT_PATH = "/api/openapi.json";

const REFUSAL_CODES = { 400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_SUPPORTED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE" } as const;

/** An error answered before the library runs, in the shape of its own: `{ message, code, data }`. */
function refuse(res: ServerResponse, status: keyof typeof REFUSAL_CODES, message: string, headers: Record<string, string> = {}): void {
  const code = REFUSAL_CODES[status];
  res
    .writeHead(status, { ...headers, "Content-Type": "application/json" })
    .end(JSON.stringify({ message, code, data: { code, httpStatus: status, domainCode: status === 400 ? "INVALID_INPUT" : null } }));
}

type RestProcedure = { _def: { inputs?: unknown[]; meta?: Meta } };
const procedures = Object.values(appRouter._def.procedures as unknown as Record<string, RestProcedure>);

/** A REST route: its method, its path as the library matches it, and the fields its body may name. */
interface Route {
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  path: string;
  pattern: RegExp;
  /** The input object's keys; undefined when the input is not one object (nothing is checked then). */
  fields: Set<string> | undefined;
  runsOn: Meta["runsOn"];
}

/** The schema inside an optional, nullable, default or prefault one; undefined for any other. */
function inner(schema: unknown): unknown {
  const wraps = schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault;
  return wraps ? schema.unwrap() : undefined;
}

/** The keys of an input object (through optional, nullable, default), or undefined. */
function objectKeys(schema: unknown): string[] | undefined {
  if (schema instanceof z.ZodObject) return Object.keys(schema.shape);
  const unwrapped = inner(schema);
  return unwrapped === undefined ? undefined : objectKeys(unwrapped);
}

const routes: Route[] = procedures.flatMap(({ _def: { inputs = [], meta } }) => {
  if (!meta?.openapi) return [];
  const keys = inputs.map(objectKeys);
  const fields = keys.every((names) => names !== undefined) ? new Set(keys.flat()) : undefined;
  // As the library matches: {param} is one path segment, in any case.
  const pattern = new RegExp(`^${meta.openapi.path.replace(/\{(.+?)\}/g, "[^/]+")}$`, "i");
  return [{ method: meta.openapi.method, path: meta.openapi.path, pattern, fields, runsOn: meta.runsOn }];
});

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
function jsonObjectBody(req: IncomingMessage, text: string): { body: string; fields: string[] } | { problem: string; status?: 415 } {
  const type = req.headers["content-type"];
  if (text.trim() === "") {
    // The library insists on a JSON content type even where nothing was sent.
    if (type === undefined) req.headers["content-type"] = "application/json";
    return { body: "{}", fields: [] };
  }
  // Media types are case-insensitive (RFC 9110); the library compares them as written.
  if (!type?.toLowerCase().startsWith("application/json")) {
    const sent = type === undefined ? "none" : `"${type.slice(0, 64)}"`;
    return { status: 415, problem: `Send the body as JSON with Content-Type: application/json (the request's was ${sent}).` };
  }
  req.headers["content-type"] = type.toLowerCase();
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
  return { body: text, fields: Object.keys(value) };
}

/** The sentence for a field (or query parameter) `name` that `route` does not take. */
function unknownField(route: Route, what: "field" | "parameter", name: string): string {
  // The path's own parameters (id) are taken in the body too, but not offered.
  const known = [...(route.fields ?? [])].filter((field) => !route.path.includes(`{${field}}`));
  const offered = known.length > 0 ? `its ${what}s are ${known.join(", ")}` : `it takes no ${what}s`;
  return `${route.method} ${route.path} takes no ${what} "${name.slice(0, 64)}"; ${offered}.`;
}

/**
 * The library types a router's meta as an open record, which a meta with a required field
 * (`permission`) cannot be assigned to as a whole; it reads only `meta.openapi`, which Meta
 * declares with the library's own type.
 */
const router = appRouter as unknown as OpenApiRouter;

/**
 * `value` as JSON can carry it: bigints (image sizes, which tRPC's superjson keeps as they
 * are) become numbers, exact below 2^53. Copies only what holds one: anything else, vm.list's
 * shared page included, is handed back as it is.
 */
function restJson(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) {
    const items = value.map(restJson);
    return items.some((item, index) => item !== value[index]) ? items : value;
  }
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, field] of Object.entries(value)) {
    const converted = restJson(field);
    if (converted !== field) (copy ??= { ...value })[key] = converted;
  }
  return copy ?? value;
}

/**
 * The router as the library calls it: the same procedures, each answer through restJson, since
 * the library serializes it with JSON.stringify (which refuses bigints) and takes no transformer.
 */
const restRouter: OpenApiRouter = {
  ...router,
  createCaller: ((ctx: unknown) => {
    const caller = appRouter.createCaller(ctx as never) as unknown as Record<string, Record<string, (input: unknown) => Promise<unknown>>>;
    return new Proxy(
      {},
      {
        get: (_, namespace: string) =>
          new Proxy(
            {},
            {
              get: (__, name: string) => async (input: unknown) => {
                const procedure = caller[namespace]?.[name];
                if (!procedure) throw new Error(`no procedure ${namespace}.${name}`);
                return restJson(await procedure(input));
              },
            },
          ),
      },
    );
  }) as OpenApiRouter["createCaller"],
};

/**
 * trpc-to-openapi turns on zod's coercion inside the shared input schemas at a route's first
 * REST call (its coerceSchema), for tRPC calls as well from then on, bodies included, and
 * inside arrays of objects: Boolean(value) makes "false" true, and Number(value) makes `true`
 * 1, `[2]` 2 and `null` 0. Booleans keep it off everywhere (no GET route takes one). Numbers
 * keep it only in the inputs of REST GET routes, whose query strings carry them as text; a
 * body carries JSON numbers.
 */
const uncoerced = { get: () => false, set: () => undefined };
function keepUncoerced(schema: unknown, numbersToo: boolean): void {
  if (!(schema instanceof z.ZodType)) return;
  const def = schema._zod.def;
  if (def.type === "boolean" || (numbersToo && def.type === "number")) {
    // The same accessors each time: a schema shared by several procedures is seen again.
    Object.defineProperty(def, "coerce", uncoerced);
  } else if (schema instanceof z.ZodObject) {
    for (const field of Object.values(schema.shape)) keepUncoerced(field, numbersToo);
  } else if (schema instanceof z.ZodArray) {
    keepUncoerced(schema.element, numbersToo);
  } else {
    keepUncoerced(inner(schema), numbersToo);
  }
}
for (const { _def: def } of procedures) {
  for (const input of def.inputs ?? []) keepUncoerced(input, def.meta?.openapi?.method !== "GET");
}

type SchemaObject = NonNullable<NonNullable<ReturnType<typeof generateOpenApiDocument>["components"]>["schemas"]>[string];

/** The error body every route answers with, as the errorFormatter and refuse() make it. */
const errorSchema: SchemaObject = {
  type: "object",
  required: ["message", "code", "data"],
  properties: {
    message: { type: "string", description: "A sentence saying what went wrong and what to change: for people, not for matching." },
    code: {
      type: "string",
      description: "tRPC's code, which the HTTP status follows.",
      enum: [
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_SUPPORTED",
        "TIMEOUT",
        "CONFLICT",
        "PRECONDITION_FAILED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "TOO_MANY_REQUESTS",
        "INTERNAL_SERVER_ERROR",
      ],
    },
    data: {
      type: "object",
      required: ["code", "httpStatus", "domainCode"],
      properties: {
        code: { type: "string" },
        httpStatus: { type: "integer" },
        path: { type: "string", description: "The procedure that answered (vm.start…), when a route was found." },
        domainCode: {
          type: ["string", "null"],
          enum: [...Object.keys(ERROR_CODES), null],
          description:
            "Hangar's reason, stable for programs to match (VM_INVALID_TRANSITION, QUOTA_EXCEEDED, HOST_OFFLINE…); null for input the schema refused and for errors outside a procedure.",
        },
      },
      additionalProperties: {},
    },
  },
  additionalProperties: {},
};

/** What each error status means on Hangar's routes. */
const ERROR_STATUSES = {
  400: "Input the route does not take; the message names the field and what to change.",
  401: "No API token, or one revoked, expired or unknown.",
  403: "The token's owner may not do this (role, ownership, quota), or the token is read-only.",
  404: "No VM, image, pool, snapshot or user with that id (or name), or no token or SSH key with that id among the caller's.",
  408: "A command ran past its timeoutSec, or the VM's host did not answer in time.",
  409: "The VM's state does not allow it now, another action on it is under way, or the name (a user's email, a key) is taken.",
  412: "The VM must be running (or stopped) for this, is protected, or its host is offline or full.",
  413: "The request body is over 1 MiB.",
  415: "The body was not sent as application/json.",
  500: "A host tool failed (domainCode DRIVER_FAILED, with its sentence), or an unexpected failure, whose message has an incident id that the server log keeps.",
} as const;

/** The error statuses a route can answer with. */
function errorStatuses(route: Route): (keyof typeof ERROR_STATUSES)[] {
  const post = route.method !== "GET";
  const elsewhere = route.runsOn !== undefined;
  return [
    400,
    401,
    403,
    ...(route.path.includes("{") || post ? [404 as const] : []),
    ...(elsewhere || post ? [408 as const] : []),
    ...(post ? [409 as const] : []),
    ...(elsewhere || post ? [412 as const] : []),
    ...(post ? [413 as const, 415 as const] : []),
    500,
  ];
}

/** The document, with `origin` (Hangar's canonical public origin) as its server. */
export function openApiDocument(origin: string) {
  const document = generateOpenApiDocument(router, {
    title: "Hangar",
    version: "1",
    description:
      "QEMU virtual machines for a team. Send an API token (the Tokens page) as `Authorization: Bearer <token>`; calls act with its owner's role. The same procedures are served over tRPC at /api/trpc.",
    baseUrl: `${origin}${REST_BASE_PATH}`,
    securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API token from the Tokens page" } },
  });
  // The library documents errors as { message, code, issues } with no other field, and only
  // 400/401/403/404/500; Hangar's have `data` (domainCode), and a VM route also answers 408,
  // 409, 412 and the body's 413 and 415.
  const schemas = (document.components ??= {}).schemas ?? {};
  for (const name of Object.keys(schemas)) if (name.startsWith("error.")) delete schemas[name];
  document.components.schemas = { ...schemas, Error: errorSchema };
  for (const route of routes) {
    const operation = document.paths?.[route.path]?.[route.method.toLowerCase() as "get" | "post"];
    if (!operation?.responses) continue;
    // "One value or a list" (vm.list's state) is anyOf [X, X[]], which client generators turn into
    // an untyped value; as a query parameter it is the list, repeated (state=a&state=b), one value included.
    for (const parameter of operation.parameters ?? []) {
      if (!("in" in parameter) || parameter.in !== "query" || !parameter.schema || !("anyOf" in parameter.schema)) continue;
      const list = parameter.schema.anyOf?.find((option) => "type" in option && option.type === "array");
      if (list) Object.assign(parameter, { schema: list, style: "form", explode: true });
    }
    const success = operation.responses["200"] as unknown;
    operation.responses = { "200": success };
    if (route.method === "GET") operation.responses["304"] = { description: "Unchanged since the ETag sent as If-None-Match; no body." };
    for (const status of errorStatuses(route)) {
      operation.responses[String(status)] = {
        description: ERROR_STATUSES[status],
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      };
    }
  }
  return document;
}

/**
 * An ETag on a GET's 200 (a hash of its JSON), and 304 without a body when If-None-Match names
 * it: a poller of GET /vms or /vms/{id} downloads nothing until something changed. Goes on
 * after compressJson, so it sees the JSON before that compresses it.
 */
function revalidate(req: IncomingMessage, res: ServerResponse): void {
  const end = res.end.bind(res);
  res.end = function (chunk?: unknown, ...rest: unknown[]): ServerResponse {
    if (res.statusCode !== 200 || typeof chunk !== "string") return Reflect.apply(end, res, [chunk, ...rest]) as ServerResponse;
    const etag = `"${createHash("sha256").update(chunk).digest("base64url").slice(0, 32)}"`;
    res.setHeader("ETag", etag);
    // Revalidated every time, and never kept by a shared cache (the answer is the token's).
    res.setHeader("Cache-Control", "private, no-cache");
    const ifNoneMatch = req.headers["if-none-match"];
    if (!notModified(Array.isArray(ifNoneMatch) ? ifNoneMatch.join(",") : ifNoneMatch, etag))
      return Reflect.apply(end, res, [chunk, ...rest]) as ServerResponse;
    res.statusCode = 304;
    res.removeHeader("Content-Type");
    return end();
  } as typeof res.end;
}

export function createRestHandler(hangar: Hangar) {
  // The library hands createContext its own copy of the request (a fetch Request, whatever
  // its type says); the context is made from the Node request itself, as for /api/trpc.
  const request = new AsyncLocalStorage<IncomingMessage>();
  const handler = createOpenApiHttpHandler({
    router: restRouter,
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
      const [path = "/", query = ""] = req.url.split("?", 2);
      const matching = routes.filter((route) => route.pattern.test(`/${path.replace(/^\/|\/$/g, "")}`));
      const method = req.method === "HEAD" ? "GET" : req.method;
      const route = matching.find((candidate) => candidate.method === method);
      if (matching.length === 0) {
        return refuse(res, 404, `No route ${req.method ?? ""} ${REST_BASE_PATH}${path.slice(0, 200)}; ${OPENAPI_DOCUMENT_PATH} lists them.`);
      }
      if (!route) {
        const allow = [...new Set(matching.map((candidate) => candidate.method))].join(", ");
        return refuse(res, 405, `${matching[0]?.path ?? path} is called with ${allow}, not ${req.method ?? "this method"}.`, { Allow: allow });
      }
      compressJson(req, res);
      if (req.method === "GET" || req.method === "HEAD") {
        // zod drops parameters it does not know: a filter misspelt or on the wrong route
        // ("stream" on /events) would answer unfiltered, as if it had filtered.
        const unknown = route.fields && [...new URLSearchParams(query).keys()].find((key) => !route.fields?.has(key));
        if (route.fields && unknown !== undefined) return refuse(res, 400, unknownField(route, "parameter", unknown));
        // The library answers any HEAD 204 without running the route (a "warmup"), so a HEAD of a
        // missing VM looked found; run it as the GET it asks about (Node sends no body for a HEAD).
        req.method = "GET";
        revalidate(req, res);
        void request.run(req, () => handler(req, res));
        return;
      }
      // The library reads a POST's fields from its body alone: a query parameter would be dropped unread.
      const queried = [...new URLSearchParams(query).keys()][0];
      if (queried !== undefined) {
        return refuse(res, 400, `${route.method} ${route.path} takes its fields in the JSON body, not the query string; move "${queried.slice(0, 64)}" there.`);
      }
      readBody(req).then(
        (text) => {
          if (text === undefined) {
            closeAfterReply(res);
            return refuse(res, 413, BODY_TOO_LARGE);
          }
          const checked = jsonObjectBody(req, text);
          if ("problem" in checked) return refuse(res, checked.status ?? 400, checked.problem);
          // zod drops fields it does not know: a misspelt optional one ("diskGib") would be ignored unseen.
          const unknown = route.fields && checked.fields.find((field) => !route.fields?.has(field));
          if (route.fields && unknown !== undefined) return refuse(res, 400, unknownField(route, "field", unknown));
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
      compressJson(req, res);
      res.setHeader("Content-Type", "application/json");
      res.setHeader("Cache-Control", "no-cache");
      res.end(req.method === "HEAD" ? undefined : document);
    },
  };
}
