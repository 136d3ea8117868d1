import path from "node:path";

export type DatabaseProvider = "sqlite" | "postgres";

/** Absolute state directory (HANGAR_STATE_DIR, default ./data). */
export function stateDir(): string {
  return path.resolve(process.env.HANGAR_STATE_DIR ?? "data");
}

/**
 * DATABASE_URL, or the embedded SQLite default under the state directory. A relative
 * `file:` path is made absolute here, so the CLI and the server open the same file.
 */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL ?? `file:${path.join(stateDir(), "hangar.db")}`;
  if (url.startsWith("file:")) return `file:${path.resolve(url.slice("file:".length))}`;
  return url;
}

export function databaseProvider(url: string): DatabaseProvider {
  if (url.startsWith("file:")) return "sqlite";
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return "postgres";
  throw new Error(`DATABASE_URL must start with file: or postgres:// (got "${url.split(":")[0]}:")`);
}
