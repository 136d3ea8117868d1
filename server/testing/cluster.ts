/**
 * A cluster for tests and benchmarks: several real Hangar processes (server/main.ts,
 * NODE_ENV=production, each with its own host name, state directory, images directory and
 * port) on one fresh PostgreSQL database, as a team runs them on several machines.
 *
 * Every host starts at the same moment on the empty database, as a team's machines do after
 * a power cut or a first install: each migrates it, registers, makes its job queue, and one
 * of them creates the admin (HANGAR_ADMIN_EMAIL/PASSWORD) the others then find. Each host's output goes to `<stateDir>/server.log`, and its
 * last lines are in the error when it fails to start. Callers talk to each host as services
 * do: tRPC over HTTP with an API token of the admin.
 *
 * Needs the dashboard's production build (`npx next build`; setup.sh makes it) and
 * PostgreSQL at HANGAR_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createTRPCClient, createWSClient, httpLink, wsLink } from "@trpc/client";
import { execa, type ResultPromise } from "execa";
import pg from "pg";
import superjson from "superjson";
import WebSocket from "ws";
import type { AppRouter } from "../api/root.ts";
import { TRPC_WS_PATH } from "../api/ws.ts";
import { createToken } from "../auth/tokens.ts";
import { createDb, type Db } from "../db.ts";
import type { LiveChange } from "../vms/changes.ts";
import { REPO_ROOT } from "./paths.ts";
import { freePort, killLeftovers } from "./processes.ts";

export const CLUSTER_ADMIN = { email: "admin@cluster.hangar", password: "cluster admin password" };

const adminUrl = () => process.env.HANGAR_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

export type ClusterClient = ReturnType<typeof clientFor>;

function clientFor(url: string, token: string) {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${url}/api/trpc`, transformer: superjson, headers: { authorization: `Bearer ${token}` } })],
  });
}

/** A dashboard's live stream on `host` (its WebSocket, as the admin): every change it sends, with when it came. */
export function liveStream(host: ClusterHost, token: string) {
  class WithHeaders extends WebSocket {
    constructor(url: string | URL) {
      super(url, { headers: { authorization: `Bearer ${token}`, origin: host.url } });
    }
  }
  const client = createWSClient({ url: `ws://127.0.0.1:${host.port}${TRPC_WS_PATH}`, WebSocket: WithHeaders as unknown as typeof globalThis.WebSocket });
  const changes: (LiveChange & { receivedAt: number })[] = [];
  const subscription = createTRPCClient<AppRouter>({ links: [wsLink({ client, transformer: superjson })] }).vm.onChange.subscribe(undefined, {
    onData: ({ data }) => {
      if (!("caughtUp" in data)) changes.push({ ...data, receivedAt: Date.now() });
    },
  });
  return {
    changes,
    close: () => {
      subscription.unsubscribe();
      void client.close();
    },
  };
}

export interface ClusterHost {
  name: string;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  stateDir: string;
  /** Everything the process was started with besides the inherited environment. */
  env: Record<string, string>;
  /** The Host row's id, once the process registered it. */
  id: string;
  /** tRPC over HTTP to this host, as the admin's API token. */
  api: ClusterClient;
  /** The server process's pid (the node process itself, no wrapper). */
  pid(): number | undefined;
  /** Sends `signal` to the server (SIGKILL: a crash) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same state directory and port; resolves once it serves. */
  restart(): Promise<void>;
  /** The last lines the server printed. */
  logTail(lines?: number): string;
}

export interface Cluster {
  databaseUrl: string;
  db: Db;
  /** The admin's API token (acts on every host). */
  token: string;
  hosts: ClusterHost[];
  host(name: string): ClusterHost;
  /** Stops every server (VMs are stopped first when `stopVms`), drops the database and the state directories. */
  close(options?: { stopVms?: boolean }): Promise<void>;
}

export interface ClusterOptions {
  /** Host names (default alpha, beta, gamma). */
  names?: string[];
  /** Settings for every host. */
  env?: Record<string, string>;
  /** Settings for one host, by name. */
  hostEnv?: Record<string, Record<string, string>>;
  /** A database to use (already created; the hosts migrate it); default a new one. */
  database?: { url: string; drop: () => Promise<void> };
  /** How long a host may take to serve (default 180 s: Next's start is slow on a busy machine). */
  startTimeoutMs?: number;
}

/** A new, empty PostgreSQL database and how to drop it. */
export async function newPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hangar_cluster_${randomBytes(6).toString("hex")}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  if (!existsSync(path.join(REPO_ROOT, ".next", "BUILD_ID"))) {
    throw new Error("the cluster runs the production server: build the dashboard first (npx next build)");
  }
  const names = options.names ?? ["alpha", "beta", "gamma"];
  const startTimeoutMs = options.startTimeoutMs ?? 180_000;
  const database = options.database ?? (await newPostgresDatabase());
  const db = createDb(database.url);
  const root = mkdtempSync(path.join(os.tmpdir(), "hangar-cluster-"));
  const guestDir = process.env.HANGAR_GUEST_DIR ?? path.join(REPO_ROOT, "data", "images", "hangar-tiny");
  let token = "";

  const hosts: ClusterHost[] = [];
  const starters = new Map<string, () => Promise<void>>();
  for (const name of names) {
    const stateDir = path.join(root, name);
    mkdirSync(stateDir, { recursive: true });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: database.url,
      HANGAR_STATE_DIR: stateDir,
      HANGAR_GUEST_DIR: guestDir,
      HANGAR_HOST_NAME: name,
      HANGAR_ADMIN_EMAIL: CLUSTER_ADMIN.email,
      HANGAR_ADMIN_PASSWORD: CLUSTER_ADMIN.password,
      HANGAR_SIGNIN_PER_MINUTE: "1000",
      HANGAR_RECONCILE_MS: "1000",
      ...options.env,
      ...options.hostEnv?.[name],
    };
    let child: ResultPromise | undefined;
    let exited: Promise<unknown> = Promise.resolve();
    const lines: string[] = [];
    const logTail = (count = 40) => lines.slice(-count).join("\n");

    const start = async () => {
      const log = createWriteStream(path.join(stateDir, "server.log"), { flags: "a" });
      const proc = execa(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "server", "main.ts")], {
        cwd: REPO_ROOT,
        env,
        reject: false,
        stdin: "ignore",
        all: true,
        buffer: false,
      });
      child = proc;
      proc.all?.on("data", (chunk: Buffer) => {
        log.write(chunk);
        for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
          lines.push(line);
          if (lines.length > 400) lines.shift();
        }
      });
      exited = proc.then(() => log.end());
      const deadline = Date.now() + startTimeoutMs;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`host ${name} exited while starting:\n${logTail()}`);
        if (lines.some((line) => line.includes("listening on"))) break;
        if (Date.now() > deadline) throw new Error(`host ${name} did not serve within ${startTimeoutMs / 1000} s:\n${logTail()}`);
        await sleep(100);
      }
      const row = await db.host.findUnique({ where: { name } });
      if (!row) throw new Error(`host ${name} serves but has no Host row`);
      host.id = row.id;
    };

    const host: ClusterHost = {
      name,
      port,
      url,
      stateDir,
      env,
      id: "",
      api: clientFor(url, ""),
      pid: () => child?.pid,
      async kill(signal = "SIGTERM") {
        if (child && child.exitCode === null) child.kill(signal);
        await exited;
      },
      async restart() {
        await host.kill("SIGTERM");
        lines.length = 0;
        await start();
      },
      logTail,
    };
    hosts.push(host);
    starters.set(name, start);
  }

  const close = async ({ stopVms = true }: { stopVms?: boolean } = {}) => {
    if (stopVms && token) {
      // Every VM is stopped by its own host before the servers go: qemu outlives Hangar.
      const vms = await db.vm.findMany({ select: { id: true } });
      const api = hosts[0]?.api;
      await Promise.allSettled(
        vms.map(async (vm) => {
          await api?.vm.stop.mutate({ id: vm.id, timeoutSec: 0 }).catch(() => undefined);
          await api?.vm.delete.mutate({ id: vm.id }).catch(() => undefined);
        }),
      );
    }
    await Promise.allSettled(hosts.map((host) => host.kill("SIGTERM")));
    killLeftovers(root);
    await db.$disconnect();
    await database.drop();
    rmSync(root, { recursive: true, force: true });
  };

  try {
    if (hosts.length === 0) throw new Error("a cluster needs at least one host");
    const started = await Promise.allSettled(hosts.map((host) => starters.get(host.name)?.()));
    const failed = started.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
    const admin = await db.user.findUnique({ where: { email: CLUSTER_ADMIN.email } });
    if (!admin) throw new Error(`no host created the admin:\n${hosts.map((host) => host.logTail()).join("\n")}`);
    token = (await createToken(db, admin.id, { name: "cluster-test" })).token;
    for (const host of hosts) host.api = clientFor(host.url, token);
  } catch (error) {
    await close({ stopVms: false }).catch(() => undefined);
    throw error;
  }

  return {
    databaseUrl: database.url,
    db,
    token,
    hosts,
    host(name) {
      const found = hosts.find((h) => h.name === name);
      if (!found) throw new Error(`no host ${name} in this cluster`);
      return found;
    },
    close,
  };
}
