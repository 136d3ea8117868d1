/**
 * /metrics in Prometheus text format. On Hangar's own port it takes an admin's API token
 * (Authorization: Bearer): the figures name every VM and owner. HANGAR_METRICS_ADDRESS
 * serves it on a separate address without authentication, for a Prometheus on the host or
 * a private network; that address is the lock there.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { bearerToken } from "../auth/principal.ts";
import { principalForToken } from "../auth/tokens.ts";
import type { Db } from "../db.ts";
import { logger } from "../log.ts";
import type { Metrics } from "./service.ts";

export const METRICS_PATH = "/metrics";

export function isMetricsRequest(req: IncomingMessage): boolean {
  const url = req.url ?? "";
  return url === METRICS_PATH || url.startsWith(`${METRICS_PATH}?`);
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...headers }).end(text);
}

async function serve(metrics: Metrics, res: ServerResponse): Promise<void> {
  try {
    const text = await metrics.registry.metrics();
    res.writeHead(200, { "Content-Type": metrics.registry.contentType, "Cache-Control": "no-store" }).end(text);
  } catch (error) {
    logger.error({ err: error }, "metrics could not be collected");
    plain(res, 500, "The metrics could not be collected; the server log says why.");
  }
}

/** /metrics on the main port: an admin's API token only. */
export async function handleMetrics(db: Db, metrics: Metrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") return plain(res, 405, "Use GET.", { Allow: "GET, HEAD" });
  const token = bearerToken(req.headers.authorization);
  const principal = token !== undefined ? await principalForToken(db, token) : undefined;
  if (!principal)
    return plain(res, 401, "Send an admin's API token as Authorization: Bearer <token>, or scrape HANGAR_METRICS_ADDRESS.", {
      "WWW-Authenticate": 'Bearer realm="hangar"',
    });
  if (principal.role !== "admin") return plain(res, 403, "Only an admin's token may read /metrics.");
  await serve(metrics, res);
}

/** The unauthenticated /metrics server of HANGAR_METRICS_ADDRESS ("127.0.0.1:9464"). */
export function startMetricsServer(metrics: Metrics, address: string): Promise<Server> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(colon + 1));
  const server = createServer((req, res) => {
    if (!isMetricsRequest(req)) return plain(res, 404, "Only /metrics is served here.");
    void serve(metrics, res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
