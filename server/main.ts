/**
 * The Hangar process: one HTTP server on one port for the Next dashboard, the tRPC API
 * (/api/trpc) and WebSocket upgrades, plus the reconciler. tRPC is served here rather
 * than from a Next route handler so that it shares this process's module graph (the bus,
 * the in-flight set) instead of a second copy bundled by Next.
 */
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import next from "next";
import { appRouter } from "./api/root.ts";
import { loadEnv } from "./env.ts";
import { createHangar } from "./hangar.ts";
import { migrateDatabase } from "./migrate.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (message: string) => console.log(`[hangar] ${message}`);

async function main(): Promise<void> {
  const env = loadEnv();
  await migrateDatabase(env.databaseUrl);
  const hangar = createHangar({ env, log });
  const builtin = await hangar.images.ensureBuiltinImage(env.guestDir);
  if (!builtin) log(`no built-in image at ${env.guestDir}; run scripts/setup.sh`);
  void hangar.accel();
  const stopReconciler = hangar.reconciler.startLoop(env.HANGAR_RECONCILE_MS);
  void hangar.pools.start();

  const dev = env.NODE_ENV !== "production";
  const app = next({ dev, dir: root, hostname: env.HOST, port: env.PORT });
  await app.prepare();
  const handleNext = app.getRequestHandler();
  const handleNextUpgrade = app.getUpgradeHandler();
  const handleTrpc = createHTTPHandler({
    router: appRouter,
    basePath: "/api/trpc/",
    createContext: () => ({ hangar, actor: "local-user" }),
  });

  const server = createServer((req, res) => {
    if (req.url?.startsWith("/api/trpc/")) {
      handleTrpc(req, res);
      return;
    }
    void handleNext(req, res);
  });
  server.on("upgrade", (req, socket, head) => {
    void handleNextUpgrade(req, socket, head);
  });
  server.listen(env.PORT, env.HOST, () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : env.PORT;
    log(`dashboard on http://${env.HOST}:${port} (state in ${env.stateDir})`);
  });

  const shutdown = () => {
    log("shutting down; VMs keep running");
    stopReconciler();
    void hangar.pools.close();
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
