/** The environment, validated once at start-up (host paths absolute). */
import path from "node:path";
import { z } from "zod";
import { databaseUrl, stateDir } from "./database-url.ts";

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
  /** Origins besides the server's own allowed to open terminals, comma-separated. */
  HANGAR_ALLOWED_ORIGINS: z
    .string()
    .default("")
    .transform((text) => text.split(",").map((o) => o.trim()).filter(Boolean))
    .pipe(
      z.array(
        z
          .url({ protocol: /^https?$/, error: "HANGAR_ALLOWED_ORIGINS must be full origins such as https://hangar.example.com" })
          // Browsers send the bare origin; a path here would never match one.
          .refine((url) => !URL.canParse(url) || new URL(url).origin === url.replace(/\/$/, ""), "HANGAR_ALLOWED_ORIGINS entries are scheme, host and port only, without a path")
          .transform((url) => new URL(url).origin),
      ),
    ),
  /** The host directory vm.sync may copy from (default <state>/sync). */
  HANGAR_SYNC_ROOT: z.string().refine((dir) => path.isAbsolute(dir), "HANGAR_SYNC_ROOT must be an absolute path").optional(),
  /** The host address VM port forwards (SSH among them) listen on. */
  HANGAR_FORWARD_ADDRESS: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}$/, "HANGAR_FORWARD_ADDRESS must be an IPv4 address such as 127.0.0.1 or 0.0.0.0")
    .default("127.0.0.1"),
  /** Host bridges VMs may join (network "bridge"), comma-separated; none by default. */
  HANGAR_BRIDGES: z
    .string()
    .default("")
    .transform((text) => text.split(",").map((b) => b.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/, "HANGAR_BRIDGES entries must be interface names such as br0"))),
  /** This host's name in the Host table (default: the machine's hostname). */
  HANGAR_HOST_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,63}$/, "HANGAR_HOST_NAME must be a host name").optional(),
});

export interface Env extends z.infer<typeof schema> {
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
  return { ...parsed.data, stateDir: dir, databaseUrl: databaseUrl(), imagesDir, guestDir, syncRoot };
}

/** An Env with every setting at its default, for tests and benchmarks on their own state dir. */
export function envFor(paths: { stateDir: string; databaseUrl: string; guestDir: string }, settings: Partial<z.infer<typeof schema>> = {}): Env {
  return { ...schema.parse({}), ...settings, ...paths, imagesDir: path.join(paths.stateDir, "images"), syncRoot: path.join(paths.stateDir, "sync") };
}
