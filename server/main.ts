/**
 * The Hangar process: one HTTP server on one port (server/http-server.ts) for the Next
 * dashboard, the tRPC API (/api/trpc), sign-in (/api/auth) and WebSocket upgrades, plus the
 * reconciler, the pool keeper, this host's heartbeat and lease, and (on PostgreSQL) the
 * worker of this host's job queue, which runs the calls other hosts forward here. tRPC is served here rather
 * than from a Next route handler so that it shares this process's module graph (the bus,
 * the in-flight set) instead of a second copy bundled by Next.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { resolveAuthSecret } from "./auth/cluster-secret.ts";
import { bootstrapAdmin } from "./auth/users.ts";
import { databaseProvider } from "./database-url.ts";
import { createDb } from "./db.ts";
import { applyGuestFirewall } from "./driver/qemu/guest-firewall.ts";
import { qemuRunAs } from "./driver/qemu/manager.ts";
import { loadEnv } from "./env.ts";
import { createHangar } from "./hangar.ts";
import { runForwardedCall } from "./cluster/serve.ts";
import { createHttpServer } from "./http-server.ts";
import { logger } from "./log.ts";
import { startMetricsServer } from "./metrics/http.ts";
import { EXIT_NEWER_DATABASE, NewerDatabaseError, migrateDatabase } from "./migrate.ts";
import { machineBootId, machineStopping, startAtBoot, stopForShutdown } from "./vms/autostart.ts";
import { startFanout } from "./vms/fanout.ts";

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
  const migrated = await migrateDatabase(env.databaseUrl);
  if (migrated.length > 0) {
    const which = migrated.length <= 8 ? migrated.join(", ") : `${migrated[0]} to ${migrated.at(-1)}`;
    log(`database migrated: ${migrated.length === 1 ? "1 migration" : `${migrated.length} migrations`} applied (${which})`);
  }
  const db = createDb(env.databaseUrl);
  // One secret for every host on this database: a session from one is good on all.
  const authSecret = await resolveAuthSecret({ db, stateDir: env.stateDir, fromEnv: env.HANGAR_AUTH_SECRET });
  const hangar = createHangar({ env, db, log, authSecret });
  // Before anything acts as this host: a second process with this host name stops here.
  const claimed = await hangar.hosts.claim();
  // Beating from the claim on: the start-up below (hashing the built-in image, the guest
  // firewall) can outlast the offline time on a busy machine, and the others would show
  // this host offline meanwhile, then record it back a second time.
  const hostBack = async (offlineForMs: number) => {
    await hangar.cluster.recordBack(offlineForMs, hangar.recorder);
    await hangar.reconciler.reconcileAll();
  };
  const stopHeartbeat = hangar.hosts.startHeartbeat({
    onBack: (offlineForMs) => void hostBack(offlineForMs).catch((error: unknown) => log(`host back: ${String(error)}`)),
    onLost: () => {
      // Another process holds this host name now: this one must not act on its VMs any more.
      log(`another Hangar process took over host ${hangar.hosts.name} (this one had stopped beating); exiting`);
      process.exit(1);
    },
    onError: (error) => log(`heartbeat failed: ${error instanceof Error ? error.message : String(error)}`),
  });
  const adopted = await hangar.cluster.adoptHostless();
  if (adopted > 0) log(`${adopted} VM(s) from before hosts existed are this host's (${hangar.hosts.name}) from now on`);
  // PostgreSQL may be shared by several hosts: their changes reach this one's dashboards.
  const fanout = databaseProvider(env.databaseUrl) === "postgres" ? startFanout({ databaseUrl: env.databaseUrl, db, bus: hangar.bus, log }) : undefined;
  const builtin = await hangar.images.ensureBuiltinImage(env.guestDir);
  // setup.sh builds it under the checkout's data/; a state dir elsewhere finds it through HANGAR_GUEST_DIR.
  if (!builtin) log(`no built-in image at ${env.guestDir}; run scripts/setup.sh, or point HANGAR_GUEST_DIR at the one it built (data/images/hangar-tiny)`);
  const interrupted = await hangar.images.failInterruptedImports();
  if (interrupted > 0) log(`${interrupted} image import(s) interrupted by the restart marked failed`);
  await confineGuests(env.HANGAR_QEMU_USER);
  void hangar.accel();
  await hangar.copies.registerStore();
  // Images deleted on another host leave their copies here, and VM moves cut short theirs: swept now and every 10 minutes.
  const sweepStore = () => {
    void hangar.copies.sweep().catch((error: unknown) => log(`image store sweep: ${String(error)}`));
    void hangar.moves.sweep().catch((error: unknown) => log(`VM move sweep: ${String(error)}`));
  };
  sweepStore();
  const storeSweeper = setInterval(sweepStore, 10 * 60_000);
  storeSweeper.unref();
  if (claimed.offlineForMs > 0) void hostBack(claimed.offlineForMs).catch((error: unknown) => log(`host back: ${String(error)}`));
  await hangar.cluster.serve((data) => runForwardedCall(hangar, data, log));
  const stopWatchingHosts = hangar.cluster.shared ? hangar.cluster.watchHosts((change) => hangar.bus.deliver(change)) : () => undefined;
  const setupCode = await bootstrapAdmin(hangar.db, hangar.auth, env.stateDir, env.HANGAR_ADMIN_EMAIL, env.HANGAR_ADMIN_PASSWORD);
  const stopReconciler = hangar.reconciler.startLoop(env.HANGAR_RECONCILE_MS);
  const stopSampler = hangar.metrics.start();
  const metricsServer = env.HANGAR_METRICS_ADDRESS ? await startMetricsServer(hangar.metrics, env.HANGAR_METRICS_ADDRESS) : undefined;
  if (env.HANGAR_METRICS_ADDRESS) log(`metrics on http://${env.HANGAR_METRICS_ADDRESS}/metrics (HANGAR_METRICS_ADDRESS, no authentication)`);
  // After the loop's first pass (it logs its own failures): members a crash left mid-clone
  // are Initial by then, for the pool's sweep.
  // Then, on a new boot of the machine, its VMs marked autostart, before pools take the CPU.
  void hangar.reconciler
    .reconcileAll()
    .catch(() => undefined)
    .then(async () => {
      const { started, failed } = await startAtBoot(hangar, await machineBootId());
      if (started.length > 0) log(`started at boot: ${started.join(", ")}`);
      if (failed.length > 0) log(`not started at boot (see their events): ${failed.join(", ")}`);
    })
    .catch((error: unknown) => log(`start at boot: ${String(error)}`))
    .then(() => hangar.pools.start());

  const dev = env.NODE_ENV !== "production";
  const app = next({ dev, dir: root, hostname: env.HOST, port: env.PORT });
  await app.prepare();
  const server = createHttpServer({ hangar, dev, pages: { handle: app.getRequestHandler(), handleUpgrade: app.getUpgradeHandler() } });
  await fanout?.listening();
  server.listen(env.PORT, env.HOST, () => {
    const origin = env.publicOrigins[0] ?? "";
    log(`dashboard on ${origin}, listening on ${env.HOST}:${env.PORT} (state in ${env.stateDir})`);
    log(`answers to ${env.publicOrigins.join(", ")} (HANGAR_PUBLIC_ORIGIN)`);
    if (setupCode) {
      log(`no user yet: create the first admin at ${origin}/setup with the setup code ${setupCode}`);
      log(`(the code is also in ${env.stateDir}/setup-code; or set HANGAR_ADMIN_EMAIL and HANGAR_ADMIN_PASSWORD)`);
    }
  });

  let stopping = false;
  /**
   * SIGTERM (systemd, `kill`) or SIGINT (Ctrl+C): stop taking requests, end every WebSocket
   * and terminal, stop the timers, let work in flight settle, close Next and the database,
   * exit 0. qemu runs daemonized and is left as it is: the reconciler adopts each VM at the
   * next start, and finishes or rolls back an action this cut short. When the machine itself
   * is shutting down, the running VMs are stopped first (power button, then forced), since
   * the end of the shutdown would kill their qemu. A second signal exits at once.
   */
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(0);
    stopping = true;
    // Open keep-alive connections would hold server.close() forever.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    stopReconciler();
    // No new pool member boots while the guests go down.
    const poolsClosed = hangar.pools.close();
    hangar.terminals.close();
    hangar.consoles.closeAll();
    void (async () => {
      if (await machineStopping()) {
        log(`${signal}: the machine is shutting down; stopping this host's VMs first (${env.HANGAR_SHUTDOWN_TIMEOUT_SEC} s each after the power button)`);
        const { stopped, failed } = await stopForShutdown(hangar, env.HANGAR_SHUTDOWN_TIMEOUT_SEC * 1000).catch((error: unknown) => {
          log(`stopping the VMs: ${String(error)}`);
          return { stopped: [], failed: [] };
        });
        if (stopped.length > 0) log(`stopped for the shutdown: ${stopped.join(", ")}`);
        if (failed.length > 0) log(`not stopped (see their events): ${failed.join(", ")}`);
      } else {
        log(`${signal}: shutting down; VMs keep running`);
      }
      const historyWritten = stopSampler().catch((error: unknown) => log(`metrics history not written: ${String(error)}`));
      metricsServer?.close();
      stopHeartbeat();
      stopWatchingHosts();
      clearInterval(storeSweeper);
      void fanout?.stop();
      // Work that does not settle (a hung database) does not keep the process.
      setTimeout(() => {
        log("stopped without waiting for work still in flight");
        process.exit(0);
      }, 10_000).unref();
      await Promise.allSettled([closed, historyWritten, poolsClosed, hangar.lifecycle.close(), hangar.cluster.close().then(() => hangar.hosts.release())]);
      await app.close().catch(() => undefined);
      await hangar.db.$disconnect().catch(() => undefined);
      log("stopped");
      process.exit(0);
    })();
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  // A database a newer Hangar migrated is no failure a restart mends.
  if (error instanceof NewerDatabaseError) {
    logger.fatal(error.message);
    process.exit(EXIT_NEWER_DATABASE);
  }
  logger.fatal({ err: error }, error instanceof Error ? error.message : String(error));
  process.exit(1);
});
