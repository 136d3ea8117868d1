/**
 * The Hangar process: one HTTP server on one port for the Next dashboard, the tRPC API
 * (/api/trpc), sign-in (/api/auth) and WebSocket upgrades, plus the reconciler, the pool
 * keeper and this host's heartbeat. tRPC is served here rather
 * than from a Next route handler so that it shares this process's module graph (the bus,
 * the in-flight set) instead of a second copy bundled by Next.
 */
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { toNodeHandler } from "better-auth/node";
import next from "next";
import { TRPC_BASE_PATH, createTrpcHandler } from "./api/http.ts";
import { CLIENT_IP_HEADER } from "./auth/better-auth.ts";
import { authenticate } from "./auth/principal.ts";
import { bootstrapAdmin } from "./auth/users.ts";
import { loadEnv } from "./env.ts";
import { createHangar } from "./hangar.ts";
import { migrateDatabase } from "./migrate.ts";
import { TERMINAL_PATH } from "./terminal/bridge.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (message: string) => console.log(`[hangar] ${message}`);

async function main(): Promise<void> {
  const env = loadEnv();
  await migrateDatabase(env.databaseUrl);
  const hangar = createHangar({ env, log });
  const builtin = await hangar.images.ensureBuiltinImage(env.guestDir);
  if (!builtin) log(`no built-in image at ${env.guestDir}; run scripts/setup.sh`);
  void hangar.accel();
  await hangar.hosts.selfId();
  const stopHeartbeat = hangar.hosts.startHeartbeat(5000);
  const needsFirstAdmin = await bootstrapAdmin(hangar.db, hangar.auth, env.HANGAR_ADMIN_EMAIL, env.HANGAR_ADMIN_PASSWORD);
  const stopReconciler = hangar.reconciler.startLoop(env.HANGAR_RECONCILE_MS);
  void hangar.pools.start();

  const dev = env.NODE_ENV !== "production";
  const app = next({ dev, dir: root, hostname: env.HOST, port: env.PORT });
  await app.prepare();
  const handleNext = app.getRequestHandler();
  const handleNextUpgrade = app.getUpgradeHandler();
  const handleTrpc = createTrpcHandler(hangar);
  const handleAuth = toNodeHandler(hangar.auth);

  const server = createServer((req, res) => {
    if (req.url?.startsWith(TRPC_BASE_PATH)) {
      handleTrpc(req, res);
      return;
    }
    if (req.url?.startsWith("/api/auth/")) {
      req.headers[CLIENT_IP_HEADER] = req.socket.remoteAddress ?? "unknown";
      // Signing out ends the terminals opened from that session at once.
      if (req.url.startsWith("/api/auth/sign-out")) {
        void authenticate(hangar.db, hangar.auth, req.headers).then((principal) => {
          if (principal?.sessionId) res.once("finish", () => hangar.terminals.closeForSession(principal.sessionId ?? ""));
          void handleAuth(req, res);
        });
        return;
      }
      void handleAuth(req, res);
      return;
    }
    void handleNext(req, res);
  });
  server.on("upgrade", (req, socket, head) => {
    if (req.url?.startsWith(TERMINAL_PATH)) hangar.terminals.handleUpgrade(req, socket, head);
    // Everything else is Next's (its dev server reloads pages over a WebSocket).
    else void handleNextUpgrade(req, socket, head);
  });
  server.listen(env.PORT, env.HOST, () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : env.PORT;
    log(`dashboard on http://${env.HOST}:${port} (state in ${env.stateDir})`);
    if (needsFirstAdmin) log(`no user yet: create the first admin at http://${env.HOST}:${port}/setup (or set HANGAR_ADMIN_EMAIL and HANGAR_ADMIN_PASSWORD)`);
  });

  const shutdown = () => {
    log("shutting down; VMs keep running");
    stopReconciler();
    stopHeartbeat();
    hangar.terminals.close();
    void hangar.pools.close();
    void hangar.lifecycle.close();
    server.close();
    void app.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
