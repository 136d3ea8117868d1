/**
 * Downloads for URL imports, kept out of the host: every host name is resolved here and each
 * address checked against the address policy; the connection goes to the address checked
 * (a `lookup` that returns it, so a DNS answer that changes in between cannot slip through).
 * Redirects are followed by hand, each target checked again. Connect and idle timeouts and a
 * size cap bound what a slow or endless server can cost.
 */
import dns from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import net, { type LookupFunction } from "node:net";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HangarError } from "../errors.ts";
import { hostAllowed, refusedAddress, type AddressPolicy } from "./address-policy.ts";

export interface FetchLimits {
  policy: AddressPolicy;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
}

/** A refusal or failure whose message is for the caller: no host path in it. */
export class ImportFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportFailure";
  }
}

/** The one address a request to `url` may connect to, or a refusal that says why not. */
export async function checkedAddress(url: URL, policy: AddressPolicy): Promise<{ address: string; family: 4 | 6 }> {
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new HangarError("INVALID_INPUT", "Only http and https URLs can be imported.");
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const literal = net.isIP(hostname);
  const addresses = literal
    ? [{ address: hostname, family: literal }]
    : await dns.lookup(hostname, { all: true }).catch(() => {
        throw new HangarError("INVALID_INPUT", `The host name "${hostname}" does not resolve.`);
      });
  if (addresses.length === 0) throw new HangarError("INVALID_INPUT", `The host name "${hostname}" does not resolve.`);
  if (!hostAllowed(hostname, policy)) {
    for (const { address } of addresses) {
      const why = refusedAddress(address, policy);
      if (why) {
        throw new HangarError(
          "INVALID_INPUT",
          `Imports may not reach ${hostname === address ? address : `${hostname} (${address})`}: ${why}. An admin can allow it with HANGAR_IMPORT_ALLOW.`,
        );
      }
    }
  }
  // IPv4 first: a server on a dual-stack name most often listens there.
  const chosen = [...addresses].sort((a, b) => a.family - b.family)[0];
  if (!chosen) throw new HangarError("INVALID_INPUT", `The host name "${hostname}" does not resolve.`);
  return { address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

/** A lookup that answers every query with the address already checked. */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Opened {
  response: http.IncomingMessage;
  url: URL;
}

/** One GET, without following redirects, under the connect and idle timeouts. */
function get(url: URL, address: { address: string; family: 4 | 6 }, limits: FetchLimits): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const request = client.get(url, {
      agent: false,
      lookup: pinnedLookup(address.address, address.family),
      headers: { "user-agent": "Hangar image import", accept: "*/*" },
    });
    const connectTimer = setTimeout(
      () => request.destroy(new ImportFailure(`could not connect to ${url.host} within ${limits.connectTimeoutMs / 1000} s`)),
      limits.connectTimeoutMs,
    );
    let response: http.IncomingMessage | undefined;
    request.on("socket", (socket) => {
      const connected = () => clearTimeout(connectTimer);
      if (socket.connecting) socket.once("connect", connected);
      else connected();
      socket.setTimeout(limits.idleTimeoutMs, () => {
        const stalled = new ImportFailure(`${url.host} sent nothing for ${limits.idleTimeoutMs / 1000} s`);
        response?.destroy(stalled);
        request.destroy(stalled);
      });
    });
    request.once("response", (answer) => {
      clearTimeout(connectTimer);
      response = answer;
      resolve(answer);
    });
    request.once("error", (error) => {
      clearTimeout(connectTimer);
      reject(error);
    });
    request.once("close", () => clearTimeout(connectTimer));
  });
}

/** GETs `url`, following up to maxRedirects redirects, each target checked like the first. */
export async function openFollowingRedirects(url: URL, limits: FetchLimits): Promise<Opened> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const address = await checkedAddress(current, limits.policy);
    const response = await get(current, address, limits);
    const location = response.headers.location;
    if (!REDIRECTS.has(response.statusCode ?? 0) || !location) return { response, url: current };
    response.destroy();
    if (hop >= limits.maxRedirects) throw new ImportFailure(`more than ${limits.maxRedirects} redirects`);
    current = new URL(location, current);
  }
}

/**
 * Streams `url` into `sink` (which writes it somewhere), passing each chunk to `onChunk`
 * (hashing, progress). Refuses an error status, an HTML page and anything over the size cap.
 */
export async function download(
  url: URL,
  sink: (body: AsyncIterable<Buffer>) => Promise<unknown>,
  limits: FetchLimits,
  hooks: { onLength: (bytes: number) => Promise<void>; onChunk: (chunk: Buffer, received: number) => void },
): Promise<number> {
  const { response, url: final } = await openFollowingRedirects(url, limits);
  try {
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) throw new ImportFailure(`${final.host} answered ${status} ${response.statusMessage ?? ""}`.trim());
    const type = (response.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (type === "text/html" || type === "application/xhtml+xml") {
      throw new ImportFailure(`${final.host} sent a web page (${type}), not a disk image`);
    }
    const length = Number(response.headers["content-length"] ?? 0);
    if (length > limits.maxBytes) throw new ImportFailure(`the image is ${length} bytes, over the ${limits.maxBytes}-byte limit`);
    await hooks.onLength(Number.isFinite(length) ? length : 0);
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > limits.maxBytes) {
          callback(new ImportFailure(`the image is over the ${limits.maxBytes}-byte limit`));
          return;
        }
        hooks.onChunk(chunk, received);
        callback(null, chunk);
      },
    });
    await pipeline(response, meter, sink);
    return received;
  } finally {
    response.destroy();
  }
}
