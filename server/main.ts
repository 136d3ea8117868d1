/**
 * The Hangar process: one HTTP server on one port (server/http-server.ts) for the Next
 * dashboard, the tRPC API (/api/trpc), sign-in (/api/auth) and WebSocket upgrades, plus the
 * reconciler, the pool keeper and this host's heartbeat. tRPC is served here rather
 * than from a Next route handler so that it shares this process's module graph (the bus,
 * the in-flight set) instead of a second copy bundled by Next.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { bootstrapAdmin } from "./auth/users.ts";
import { applyGuestFirewall } from "./driver/qemu/guest-firewall.ts";
import { qemuRunAs } from "./driver/qemu/manager.ts";
import { loadEnv } from "./env.ts";
import { createHangar } from "./hangar.ts";
import { createHttpServer } from "./http-server.ts";
import { logger } from "./log.ts";
import { startMetricsServer } from "./metrics/http.ts";
import { migrateDatabase } from "./migrate.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (message: string) => logger.info(message);

/**
 * When qemu runs as its own user, nat guests are kept off this host's own addresses
 * (server/driver/qemu/guest-firewall.ts). Without it, say so: they could reach services that
 * listen only on this host.
 */
async function confineGuests(qemuUser: string): Promise<void> {
  const user = await qemuRunAs(qemuUser).catch(() => undefined);
  if (!user) {
    log("qemu runs as Hangar's own user: nat guests can reach services listening on this host's addresses (run Hangar as root to confine them)");
    return;
  }
  const firewall = await applyGuestFirewall(user);
  if (firewall.applied) log(`guest firewall: ${user} may not open connections to this host's addresses (DNS aside)`);
  else log(`guest firewall not loaded (${firewall.reason}): nat guests can reach services listening on this host's addresses`);
}

async function main(): Promise<void> {
  const env = loadEnv();
  logger.level = env.HANGAR_LOG_LEVEL;
  await migrateDatabase(env.databaseUrl);
  const hangar = createHangar({ env, log });
  const builtin = await hangar.images.ensureBuiltinImage(env.guestDir);
  if (!builtin) log(`no built-in image at ${env.guestDir}; run scripts/setup.sh`);
  const interrupted = await hangar.images.failInterruptedImports();
  if (interrupted > 0) log(`${interrupted} image import(s) interrupted by the restart marked failed`);
  await confineGuests(env.HANGAR_QEMU_USER);
  void hangar.accel();
  await hangar.hosts.selfId();
  const stopHeartbeat = hangar.hosts.startHeartbeat(5000);
  const setupCode = await bootstrapAdmin(hangar.db, hangar.auth, env.stateDir, env.HANGAR_ADMIN_EMAIL, env.HANGAR_ADMIN_PASSWORD);
  const stopReconciler = hangar.reconciler.startLoop(env.HANGAR_RECONCILE_MS);
  const stopSampler = hangar.metrics.start();
  const metricsServer = env.HANGAR_METRICS_ADDRESS ? await startMetricsServer(hangar.metrics, env.HANGAR_METRICS_ADDRESS) : undefined;
  if (env.HANGAR_METRICS_ADDRESS) log(`metrics on http://${env.HANGAR_METRICS_ADDRESS}/metrics (HANGAR_METRICS_ADDRESS, no authentication)`);
  // After the loop's first pass (it logs its own failures): members a crash left mid-clone
  // are Initial by then, for the pool's sweep.
  void hangar.reconciler.reconcileAll().catch(() => undefined).then(() => hangar.pools.start());

  const dev = env.NODE_ENV !== "production";
  const app = next({ dev, dir: root, hostname: env.HOST, port: env.PORT });
  await app.prepare();
  const server = createHttpServer({ hangar, dev, pages: { handle: app.getRequestHandler(), handleUpgrade: app.getUpgradeHandler() } });
  server.listen(env.PORT, env.HOST, () => {
    const origin = env.publicOrigins[0] ?? "";
    log(`dashboard on ${origin}, listening on ${env.HOST}:${env.PORT} (state in ${env.stateDir})`);
    log(`answers to ${env.publicOrigins.join(", ")} (HANGAR_PUBLIC_ORIGIN)`);
    if (setupCode) {
      log(`no user yet: create the first admin at ${origin}/setup with the setup code ${setupCode}`);
      log(`(the code is also in ${env.stateDir}/setup-code; or set HANGAR_ADMIN_EMAIL and HANGAR_ADMIN_PASSWORD)`);
    }
  });

  const shutdown = () => {
    log("shutting down; VMs keep running");
    stopReconciler();
    stopSampler();
    metricsServer?.close();
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
  logger.fatal({ err: error }, error instanceof Error ? error.message : String(error));
  process.exit(1);
});
