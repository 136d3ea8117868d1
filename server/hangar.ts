/**
 * The wiring: one set of services per process (database, bus, driver, lifecycle,
 * reconciler, images, pools, hosts and the cluster, auth). main.ts builds it once; tests build their own.
 */
import path from "node:path";
import { createDb, type Db } from "./db.ts";
import type { Manager } from "./driver/manager.ts";
import type { Accel } from "./driver/qemu/args.ts";
import { chooseAccel } from "./driver/qemu/accel.ts";
import { QemuManager, qemuVersion } from "./driver/qemu/manager.ts";
import { importSettings, type Env } from "./env.ts";
import { createRecorder } from "./audit/recorder.ts";
import { createAuth, stateDirSecret } from "./auth/better-auth.ts";
import { clusterKey } from "./auth/cluster-secret.ts";
import { createCluster } from "./cluster/cluster.ts";
import { createMoves } from "./cluster/move.ts";
import { databaseProvider } from "./database-url.ts";
import { createHosts, postgresNow, sshAddressFor } from "./hosts.ts";
import { createTerminalBridge } from "./terminal/bridge.ts";
import { createConsoleHub } from "./terminal/console-hub.ts";
import { createTicketStore } from "./terminal/tickets.ts";
import { createImageCopies, type ImageFiles, type LocalImage } from "./images/copies.ts";
import { createImages } from "./images/images.ts";
import { timedLifecycle, timedPools } from "./metrics/instrument.ts";
import { createMetrics } from "./metrics/service.ts";
import { createPools, type PoolDeps } from "./pool/pool.ts";
import { VmBus } from "./vms/bus.ts";
import { createLifecycle } from "./vms/lifecycle.ts";
import { createReconciler, type ReconcilerDeps } from "./vms/reconcile.ts";

export interface HangarOptions {
  env: Env;
  db?: Db;
  /** Replaces the qemu driver (unit tests of the layers above it). */
  driverFor?: (vmId: string) => Manager;
  log?: (message: string) => void;
  /** Pool keeper timings (tests shorten them). */
  pool?: Pick<PoolDeps, "backoffMs" | "readyTimeoutMs" | "refillDelayMs">;
  /** How long the reconciler gives the guest of an interrupted stop (tests shorten it). */
  reconciler?: Pick<ReconcilerDeps, "stopTimeoutMs">;
  /**
   * The cluster's auth secret (resolveAuthSecret: HANGAR_AUTH_SECRET or the database's);
   * absent: HANGAR_AUTH_SECRET, else one of this state directory alone.
   */
  authSecret?: string;
  /**
   * Replaces where a VM's image files are found on this host (the store, fetched from a peer
   * when missing): tests of the layers above the driver give a fake driver any path.
   */
  localImage?: (image: ImageFiles) => Promise<LocalImage>;
}

export type Hangar = ReturnType<typeof createHangar>;

export function createHangar({
  env,
  db = createDb(env.databaseUrl),
  driverFor,
  log = () => undefined,
  pool,
  reconciler: reconcilerOptions,
  authSecret,
  localImage,
}: HangarOptions) {
  const bus = new VmBus();
  let accel: Promise<Accel> | undefined;
  let accelDecided: Accel | undefined;
  const decideAccel = () => {
    accel ??= chooseAccel(env.stateDir, path.join(env.guestDir, "vmlinuz"), { qemuUser: env.HANGAR_QEMU_USER, forced: env.HANGAR_ACCEL }).then((decision) => {
      log(`accelerator: ${decision.accel} (${decision.reason})`);
      accelDecided = decision.accel;
      return decision.accel;
    });
    return accel;
  };
  let qemuVersionKnown = "";
  void qemuVersion().then((version) => (qemuVersionKnown = version));
  const driver =
    driverFor ??
    ((vmId: string) =>
      new QemuManager(vmId, {
        stateDir: env.stateDir,
        imagesDir: env.imagesDir,
        accel: decideAccel,
        qemuUser: env.HANGAR_QEMU_USER,
        forwardAddress: env.HANGAR_FORWARD_ADDRESS,
      }));
  const hosts = createHosts({
    db,
    name: env.HANGAR_HOST_NAME,
    // Peers call this address (forwarded terminals, image copies): 0.0.0.0 is no place to call.
    apiAddress: `http://${sshAddressFor(env.HOST)}:${env.PORT}`,
    accelerator: () => accelDecided ?? "undecided",
    qemuVersion: () => qemuVersionKnown,
    offlineAfterMs: env.HANGAR_HOST_OFFLINE_AFTER_SEC * 1000,
    memory: { overcommit: env.HANGAR_MEMORY_OVERCOMMIT, reserveMiB: env.HANGAR_MEMORY_RESERVE_MIB },
    forwardAddress: env.HANGAR_FORWARD_ADDRESS,
    bridges: env.HANGAR_BRIDGES,
    databaseNow: databaseProvider(env.databaseUrl) === "postgres" ? postgresNow(db) : undefined,
  });
  const cluster = createCluster({ db, databaseUrl: env.databaseUrl, hosts, log });
  const secret = authSecret ?? env.HANGAR_AUTH_SECRET ?? stateDirSecret(env.stateDir);
  /** What hosts sign their requests to each other with (terminal proxying, image copies). */
  const key = clusterKey(secret);
  const recorder = createRecorder({ db, bus });
  const copies = createImageCopies({ db, imagesDir: env.imagesDir, hostId: hosts.selfId, clusterKey: key, log });
  const metrics = createMetrics({
    db,
    stateDir: env.stateDir,
    intervalMs: env.HANGAR_SAMPLE_INTERVAL_SEC * 1000,
    hostId: hosts.selfId,
    hostName: hosts.name,
    probeFor: driver,
    terminalCounts: () => terminals.counts(),
  });
  const lifecycle = timedLifecycle(
    createLifecycle({
      db,
      bus,
      recorder,
      driverFor: driver,
      hostId: hosts.selfId,
      hostName: hosts.name,
      noRoom: cluster.noRoomHere,
      localImage: localImage ?? copies.ensureLocal,
      readiness: { watchLimitMs: env.HANGAR_READY_TIMEOUT_SEC * 1000 },
    }),
    metrics,
  );
  const consoles = createConsoleHub({ bus, driverFor: driver });
  const moves = createMoves({
    db,
    hosts,
    shared: cluster.shared,
    lifecycle,
    recorder,
    stateDir: env.stateDir,
    localImage: localImage ?? copies.ensureLocal,
    clusterKey: key,
    log,
    onMovedAway: (vm, host) => consoles.movedAway(vm.id, `VM "${vm.name}" moved to host ${host}; open its console again.`),
  });
  const reconciler = createReconciler({ db, lifecycle, driverFor: driver, log, ...reconcilerOptions });
  /** A host that beats; one whose row is gone does not. */
  const hostOnline = async (hostId: string) => {
    const host = await db.host.findUnique({ where: { id: hostId }, select: { id: true, heartbeatAt: true } });
    return host !== null && hosts.isOnline(host);
  };
  const images = createImages({
    db,
    imagesDir: env.imagesDir,
    log,
    settings: importSettings(env),
    onStored: copies.recordLocal,
    hostId: hosts.selfId,
    hostOnline,
  });
  const pools = timedPools(
    createPools({
      db,
      lifecycle,
      recorder,
      bus,
      driverFor: driver,
      log,
      noRoom: cluster.noRoomHere,
      inMaintenance: hosts.inMaintenance,
      sshAddress: () => hosts.sshAddress,
      ...pool,
    }),
    metrics,
    db,
  );
  const auth = createAuth({
    secret,
    db,
    databaseUrl: env.databaseUrl,
    baseURL: env.publicOrigins[0] ?? `http://${env.HOST}:${env.PORT}`,
    trustedOrigins: env.allowedOrigins,
    signInsPerMinute: env.HANGAR_SIGNIN_PER_MINUTE ?? 10,
    onSignIn: async (user) => {
      await recorder.record({
        stream: "audit",
        actor: user.email,
        action: "sign-in",
        ok: true,
        message: `${user.email} signed in`,
        target: user.email,
        userId: user.id,
      });
    },
  });
  const tickets = createTicketStore({ db });
  const services = {
    env,
    db,
    bus,
    recorder,
    hosts,
    cluster,
    metrics,
    lifecycle,
    reconciler,
    images,
    pools,
    auth,
    consoles,
    tickets,
    driverFor: driver,
    accel: decideAccel,
    clusterKey: key,
    copies,
    moves,
  };
  const terminals = createTerminalBridge({ hangar: services, hub: consoles, tickets, allowedOrigins: env.allowedOrigins });
  return { ...services, terminals };
}
