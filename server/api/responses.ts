/**
 * What the tRPC HTTP handler does to its answers: compression for clients that accept it,
 * and, for vm.list over GET, one serialized (and compressed) body per inventory snapshot
 * shared by every caller, with an ETag that a poller sends back to get 304 Not Modified.
 *
 * The shared body is only ever served after the call went through the procedure itself
 * (createCaller: the same input validation and permission middleware as over HTTP), whose
 * answer is one shared object per snapshot page (vms/list.ts); the bytes are keyed by that
 * object, so they are made once per change, not once per caller.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";
import superjson from "superjson";
import { z } from "zod";
import { createCaller } from "./root.ts";
import { vmListInput } from "./schemas.ts";
import type { Context } from "./trpc.ts";

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Smaller bodies go as they are: compressing them saves less than it costs. */
const MIN_COMPRESS_BYTES = 1024;

export type Encoding = "br" | "gzip";

/** The encoding to send for an Accept-Encoding header: br before gzip; none when refused (q=0). */
export function acceptedEncoding(header: string | string[] | undefined): Encoding | undefined {
  const offered = new Map<string, number>();
  for (const part of (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",")) {
    const [name = "", ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    offered.set(name, q ? Number(q.slice(2)) || 0 : 1);
  }
  const wants = (name: Encoding) => (offered.get(name) ?? offered.get("*") ?? 0) > 0;
  if (wants("br")) return "br";
  if (wants("gzip")) return "gzip";
  return undefined;
}

function compress(body: Buffer, encoding: Encoding): Promise<Buffer> {
  // Quality 4: most of brotli's gain on JSON at about gzip's speed (11 would take 100x longer).
  return encoding === "br"
    ? brotli(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
    : gzipAsync(body);
}

function toBuffer(chunk: unknown): Buffer | undefined {
  if (typeof chunk === "string") return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return undefined;
}

/**
 * Makes `res` compress a JSON answer when the client accepts it: the body is held until the
 * handler ends it, then sent compressed. Anything else (an event stream) passes untouched.
 */
export function compressJson(req: IncomingMessage, res: ServerResponse): void {
  const encoding = acceptedEncoding(req.headers["accept-encoding"]);
  if (!encoding) return;
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const chunks: Buffer[] = [];
  let holding: boolean | undefined;
  const holds = () => (holding ??= !res.headersSent && String(res.getHeader("content-type") ?? "").startsWith("application/json"));
  res.write = function (chunk: unknown, ...rest: unknown[]): boolean {
    const bytes = toBuffer(chunk);
    if (!holds() || !bytes) return Reflect.apply(write, res, [chunk, ...rest]) as boolean;
    chunks.push(bytes);
    const callback = rest.find((arg) => typeof arg === "function");
    if (typeof callback === "function") process.nextTick(() => Reflect.apply(callback, undefined, []));
    return true;
  } as typeof res.write;
  res.end = function (chunk?: unknown, ...rest: unknown[]): ServerResponse {
    const bytes = typeof chunk === "function" ? undefined : toBuffer(chunk);
    if (!holds()) return Reflect.apply(end, res, [chunk, ...rest]) as ServerResponse;
    if (bytes) chunks.push(bytes);
    const body = Buffer.concat(chunks);
    res.appendHeader("Vary", "Accept-Encoding");
    if (body.length < MIN_COMPRESS_BYTES) {
      res.setHeader("Content-Length", body.length);
      return end(body);
    }
    void compress(body, encoding).then(
      (compressed) => {
        res.setHeader("Content-Encoding", encoding);
        res.setHeader("Content-Length", compressed.length);
        end(compressed);
      },
      () => {
        res.setHeader("Content-Length", body.length);
        end(body);
      },
    );
    return res;
  } as typeof res.end;
}

/** One answer's bytes: as JSON, its ETag, and compressed on first demand. */
interface Encoded {
  body: Buffer;
  etag: string;
  compressed: Partial<Record<Encoding, Promise<Buffer>>>;
}

function encoded(json: string): Encoded {
  const body = Buffer.from(json);
  return { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 32)}"`, compressed: {} };
}

/** If-None-Match names `etag` (or is *). */
export function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed === etag || trimmed === `W/${etag}`;
  });
}

const transformedInput = z.object({ json: z.unknown() }).strict();

/** A GET of vm.list alone, as httpLink or httpBatchLink sends it; its input, still transformed. */
function listCall(req: IncomingMessage, basePath: string): { batch: boolean; input: unknown } | undefined {
  if (req.method !== "GET" || !req.url) return undefined;
  const url = new URL(req.url, "http://hangar");
  if (url.pathname !== `${basePath}vm.list`) return undefined;
  const batch = url.searchParams.get("batch") === "1";
  const raw = url.searchParams.get("input");
  let parsed: unknown;
  try {
    parsed = raw === null ? undefined : JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (batch) {
    if (parsed === undefined) return { batch, input: undefined };
    if (typeof parsed !== "object" || parsed === null || Object.keys(parsed).join() !== "0") return undefined;
    return { batch, input: Reflect.get(parsed, "0") };
  }
  return { batch, input: parsed };
}

/**
 * Serves vm.list GETs from the shared snapshot. Returns false, having written nothing, for
 * any other request and for a call that fails (the tRPC handler then answers it, with the
 * error as it formats it).
 */
export function createListResponses(basePath: string, contextFor: (req: IncomingMessage) => Promise<Context>) {
  const bodies = new WeakMap<object, { single?: Encoded; batch?: Encoded }>();

  function bodyFor(page: object, batch: boolean): Encoded {
    let held = bodies.get(page);
    if (!held) bodies.set(page, (held = {}));
    const side = batch ? "batch" : "single";
    let body = held[side];
    if (!body) {
      const result = { result: { data: superjson.serialize(page) } };
      body = held[side] = encoded(JSON.stringify(batch ? [result] : result));
    }
    return body;
  }

  return async function serve(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const call = listCall(req, basePath);
    if (!call) return false;
    // vm.list's input holds nothing superjson annotates (no dates, maps or sets), so it comes
    // as { json } alone; anything else, and any input the schema refuses, is the handler's.
    const wrapped = call.input === undefined ? { success: true as const, data: { json: undefined } } : transformedInput.safeParse(call.input);
    const input = wrapped.success ? vmListInput.safeParse(wrapped.data.json) : undefined;
    if (!input?.success) return false;
    let page: object;
    try {
      page = await createCaller(await contextFor(req)).vm.list(input.data);
    } catch {
      return false;
    }
    const body = bodyFor(page, call.batch);
    res.setHeader("ETag", body.etag);
    // Pollers revalidate every time: a stale list is never taken from a cache unasked.
    res.setHeader("Cache-Control", "private, no-cache");
    res.setHeader("Vary", "Accept-Encoding, Authorization, Cookie");
    const ifNoneMatch = req.headers["if-none-match"];
    if (notModified(Array.isArray(ifNoneMatch) ? ifNoneMatch.join(",") : ifNoneMatch, body.etag)) {
      res.writeHead(304).end();
      return true;
    }
    const encoding = body.body.length >= MIN_COMPRESS_BYTES ? acceptedEncoding(req.headers["accept-encoding"]) : undefined;
    let bytes = body.body;
    if (encoding) {
      const pending = (body.compressed[encoding] ??= compress(body.body, encoding));
      bytes = await pending;
      res.setHeader("Content-Encoding", encoding);
    }
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": bytes.length }).end(bytes);
    return true;
  };
}
