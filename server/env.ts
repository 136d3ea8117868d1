/** The environment, validated once at start-up (host paths absolute). */
import path from "node:path";
import { z } from "zod";
import { databaseUrl, stateDir } from "./database-url.ts";
import { LOG_LEVELS } from "./log.ts";
import { defaultPublicOrigins } from "./origins.ts";

function isBareOrigin(url: URL): boolean {
  return url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
}

/** A comma-separated list of full origins (scheme, host, port), normalised as browsers send them. */
function originList(name: string) {
  return z
    .string()
    .default("")
    .transform((text) =>
      text
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .url({ protocol: /^https?$/, error: `${name} must be full origins such as https://hangar.example.com` })
          // Browsers send the bare origin; a path here would never match one.
          .refine((url) => !URL.canParse(url) || isBareOrigin(new URL(url)), `${name} entries are scheme, host and port only, without a path`)
          .transform((url) => new URL(url).origin),
      ),
    );
}
import { parseAllowList } from "./images/address-policy.ts";
import type { ImportSettings } from "./images/images.ts";

const schema = z.object({
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  HANGAR_RECONCILE_MS: z.coerce.number().int().min(200).default(2000),
  HANGAR_ACCEL: z.enum(["kvm", "tcg"]).optional(),
  /** Where the tiny guest was built (default: <state>/images/hangar-tiny). */
  HANGAR_GUEST_DIR: z.string().optional(),
  /** The first admin, created at start-up when no user exists yet. */
  HANGAR_ADMIN_EMAIL: z.string().email("HANGAR_ADMIN_EMAIL must be an email address").optional(),
  HANGAR_ADMIN_PASSWORD: z.string().min(8, "HANGAR_ADMIN_PASSWORD needs at least 8 characters").optional(),
  /** Sign-in attempts allowed per client address per minute (guessing passwords is slow). */
  HANGAR_SIGNIN_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /**
   * Where people and services reach Hangar, comma-separated full origins (the first is the
   * canonical one). Requests naming another Host are refused. Default: what it listens on.
   */
  HANGAR_PUBLIC_ORIGIN: originList("HANGAR_PUBLIC_ORIGIN"),
  /** Origins besides Hangar's own allowed to call in (sign in, mutate, open terminals), comma-separated. */
  HANGAR_ALLOWED_ORIGINS: originList("HANGAR_ALLOWED_ORIGINS"),
  /** The host directory vm.sync may copy from (default <state>/sync). */
  HANGAR_SYNC_ROOT: z
    .string()
    .refine((dir) => path.isAbsolute(dir), "HANGAR_SYNC_ROOT must be an absolute path")
    .optional(),
  /** The host address VM port forwards (SSH among them) listen on. */
  HANGAR_FORWARD_ADDRESS: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}$/, "HANGAR_FORWARD_ADDRESS must be an IPv4 address such as 127.0.0.1 or 0.0.0.0")
    .default("127.0.0.1"),
  /** Host bridges VMs may join (network "bridge"), comma-separated; none by default. */
  HANGAR_BRIDGES: z
    .string()
    .default("")
    .transform((text) =>
      text
        .split(",")
        .map((b) => b.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/, "HANGAR_BRIDGES entries must be interface names such as br0"))),
  /** Internal hosts and networks URL imports may reach: host names, addresses, CIDRs, comma-separated. */
  HANGAR_IMPORT_ALLOW: z
    .string()
    .default("")
    .transform((text) =>
      text
        .split(",")
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .superRefine((entries, ctx) => {
      try {
        parseAllowList(entries);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: `HANGAR_IMPORT_ALLOW: ${error instanceof Error ? error.message : String(error)}` });
      }
    }),
  /** Seconds a URL import may take to connect, and may go without receiving a byte. */
  HANGAR_IMPORT_CONNECT_TIMEOUT_SEC: z.coerce.number().positive().default(30),
  HANGAR_IMPORT_IDLE_TIMEOUT_SEC: z.coerce.number().positive().default(60),
  /** The largest image a URL import may download, and a compressed one decompress to, in bytes (default 64 GiB). */
  HANGAR_IMPORT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 ** 3),
  /**
   * Seconds after a boot that Hangar keeps checking for the ready condition (cloud-init
   * finished) before it records the VM as not ready; slow hosts (TCG) need more.
   */
  HANGAR_READY_TIMEOUT_SEC: z.coerce.number().int().min(10, "HANGAR_READY_TIMEOUT_SEC must be at least 10").default(900),
  /**
   * Seconds each guest gets to shut down after its power button when the machine shuts
   * down (VMs stop in the reverse of their start order), before it is forced off.
   */
  HANGAR_SHUTDOWN_TIMEOUT_SEC: z.coerce.number().int().min(0).max(3600).default(60),
  /** The user qemu runs as when Hangar runs as root (scripts/setup.sh creates it). */
  HANGAR_QEMU_USER: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "HANGAR_QEMU_USER must be a user name")
    .default("hangar-qemu"),
  /**
   * The secret sessions are signed with; set it alike on every host, or leave it unset on
   * all of them and the first host to start stores a generated one in the database.
   */
  HANGAR_AUTH_SECRET: z.string().min(32, "HANGAR_AUTH_SECRET needs at least 32 characters (e.g. openssl rand -base64 32)").optional(),
  /** Seconds between two samples of every running VM's and the host's usage. */
  HANGAR_SAMPLE_INTERVAL_SEC: z.coerce
    .number()
    .min(1, "HANGAR_SAMPLE_INTERVAL_SEC is at least 1")
    .max(300, "HANGAR_SAMPLE_INTERVAL_SEC is at most 300")
    .default(5),
  /**
   * host:port serving /metrics without authentication (e.g. 127.0.0.1:9464, for a local
   * Prometheus). Unset: /metrics only on the main port, with an admin's API token.
   */
  HANGAR_METRICS_ADDRESS: z
    .string()
    .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):\d{1,5}$/, "HANGAR_METRICS_ADDRESS must be address:port, such as 127.0.0.1:9464")
    .optional(),
  /** The server log's level (JSON lines on stdout). */
  HANGAR_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** This host's name in the Host table (default: the machine's hostname). */
  HANGAR_HOST_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,63}$/, "HANGAR_HOST_NAME must be a host name")
    .optional(),
  /** A host whose heartbeat is older than this is offline: its VMs are shown so and left alone. */
  HANGAR_HOST_OFFLINE_AFTER_SEC: z.coerce.number().int().min(3, "HANGAR_HOST_OFFLINE_AFTER_SEC must be at least 3").max(3600).default(15),
  /** How much of the host's memory VMs may take in all, as a multiple of its RAM (1.0: no overcommit). */
  HANGAR_MEMORY_OVERCOMMIT: z.coerce.number().positive("HANGAR_MEMORY_OVERCOMMIT must be more than 0").max(16).default(1),
  /** Memory kept for the host itself, in MiB, off what VMs may take. */
  HANGAR_MEMORY_RESERVE_MIB: z.coerce.number().int().min(0).default(1024),
});

/** The settings as parsed from the environment. */
export type Settings = z.infer<typeof schema>;

export interface Env extends Settings {
  /** HANGAR_PUBLIC_ORIGIN, or what Hangar listens on; the first is the canonical origin. */
  publicOrigins: string[];
  /** The public origins and HANGAR_ALLOWED_ORIGINS: every Origin a request may carry. */
  allowedOrigins: string[];
  stateDir: string;
  databaseUrl: string;
  imagesDir: string;
  guestDir: string;
  syncRoot: string;
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new Error(`Invalid environment: ${problems}`);
  }
  const dir = stateDir();
  const imagesDir = path.join(dir, "images");
  const guestDir = path.resolve(parsed.data.HANGAR_GUEST_DIR ?? path.join(imagesDir, "hangar-tiny"));
  const syncRoot = path.resolve(parsed.data.HANGAR_SYNC_ROOT ?? path.join(dir, "sync"));
  return { ...parsed.data, ...origins(parsed.data), stateDir: dir, databaseUrl: databaseUrl(), imagesDir, guestDir, syncRoot };
}

function origins(settings: Pick<Settings, "HOST" | "PORT" | "HANGAR_PUBLIC_ORIGIN" | "HANGAR_ALLOWED_ORIGINS">) {
  const publicOrigins = settings.HANGAR_PUBLIC_ORIGIN.length > 0 ? settings.HANGAR_PUBLIC_ORIGIN : defaultPublicOrigins(settings.HOST, settings.PORT);
  return { publicOrigins, allowedOrigins: [...new Set([...publicOrigins, ...settings.HANGAR_ALLOWED_ORIGINS])] };
}

/** An Env with every setting at its default, for tests and benchmarks on their own state dir. */
export function envFor(paths: { stateDir: string; databaseUrl: string; guestDir: string }, settings: Partial<Settings> = {}): Env {
  const merged = { ...schema.parse({}), ...settings };
  return { ...merged, ...origins(merged), ...paths, imagesDir: path.join(paths.stateDir, "images"), syncRoot: path.join(paths.stateDir, "sync") };
}

/** The URL import limits the environment sets. */
export function importSettings(env: Env): ImportSettings {
  return {
    allow: env.HANGAR_IMPORT_ALLOW,
    connectTimeoutMs: env.HANGAR_IMPORT_CONNECT_TIMEOUT_SEC * 1000,
    idleTimeoutMs: env.HANGAR_IMPORT_IDLE_TIMEOUT_SEC * 1000,
    maxBytes: env.HANGAR_IMPORT_MAX_BYTES,
  };
}
