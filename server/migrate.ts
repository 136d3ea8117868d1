/**
 * Brings the database schema up to date at start-up.
 *
 * SQLite: `prisma migrate deploy`, through Prisma's wasm schema engine and our driver
 * adapter (prisma.config.ts), offline.
 * PostgreSQL: the same migration files applied here, because Prisma 6.19's wasm engine
 * cannot read PostgreSQL's `name` columns through @prisma/adapter-pg (prisma/orm#27403:
 * "Column type 'name' could not be deserialized"). Progress goes into Prisma's own
 * `_prisma_migrations` table, so `prisma migrate` can take over once that is fixed.
 */
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { execa } from "execa";
import pg from "pg";
import { z } from "zod";
import { databaseProvider, type DatabaseProvider } from "./database-url.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The migrations this checkout has for `provider`, oldest first. */
export async function knownMigrations(provider: DatabaseProvider): Promise<string[]> {
  const dir = path.join(root, "prisma", provider, "migrations");
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The server's exit status when it refuses a newer database: the service unit does not restart it (RestartPreventExitStatus). */
export const EXIT_NEWER_DATABASE = 78;

export class NewerDatabaseError extends Error {}

/**
 * Migrations have no way back: a database that a newer Hangar has migrated holds columns and
 * marks this version neither keeps nor clears (a restart the newer one marked would be left
 * standing, and carried out when the newer one is back, on a VM stopped meanwhile). It is
 * refused before anything runs on it, with what to do instead.
 */
export function refuseNewerDatabase(applied: string[], known: string[]): void {
  const unknown = applied.filter((name) => !known.includes(name)).sort();
  if (unknown.length === 0) return;
  throw new NewerDatabaseError(
    `This database was migrated by a newer Hangar: ${unknown.length === 1 ? "migration" : "migrations"} ${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not in this version (whose newest is ${known.at(-1) ?? "none"}). ` +
      "Hangar does not run on a database newer than itself; start the newer version again, or restore the backup taken before the upgrade to run this one.",
  );
}

/** Applies the migrations the database lacks; returns their names (none: it was up to date). */
export async function migrateDatabase(databaseUrl: string): Promise<string[]> {
  if (databaseProvider(databaseUrl) === "postgres") return migratePostgres(databaseUrl);
  const known = await knownMigrations("sqlite");
  const before = sqliteApplied(databaseUrl.slice("file:".length));
  refuseNewerDatabase(before, known);
  const prisma = path.join(root, "node_modules", ".bin", "prisma");
  const result = await execa(prisma, ["migrate", "deploy"], {
    cwd: root,
    env: { DATABASE_URL: databaseUrl },
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0) throw new Error(`Database migration failed:\n${result.all}`);
  // Sessions and the auth secret live in it: Hangar's user's alone, whatever the umask (a root
  // Hangar started by hand left it 0644, readable by the user qemu drops to). SQLite gives its
  // journal the same mode.
  await chmod(databaseUrl.slice("file:".length), 0o600);
  return known.filter((name) => !before.includes(name));
}

/** The migrations recorded in a SQLite database (none when the file or the table does not exist yet). */
function sqliteApplied(file: string): string[] {
  if (!existsSync(file)) return [];
  // Not read-only: a process killed in the middle of a write leaves a hot journal, which only a
  // writable connection rolls back (read-only, every start fails with SQLITE_READONLY_ROLLBACK).
  const db = new Database(file, { fileMustExist: true });
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'").get();
    if (!table) return [];
    const rows = z
      .array(z.object({ migration_name: z.string() }))
      .parse(db.prepare("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL").all());
    return rows.map((row) => row.migration_name);
  } finally {
    db.close();
  }
}

/** An arbitrary constant: the advisory lock two Hangar processes migrating at once share. */
const MIGRATION_LOCK = 72_616_001;

async function migratePostgres(databaseUrl: string): Promise<string[]> {
  const dir = path.join(root, "prisma", "postgres", "migrations");
  const names = await knownMigrations("postgres");
  const appliedNow: string[] = [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const applied = await client.query<{ migration_name: string; checksum: string; finished: boolean }>(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
    );
    refuseNewerDatabase(
      applied.rows.map((row) => row.migration_name),
      names,
    );
    const done = new Map(applied.rows.filter((row) => row.finished).map((row) => [row.migration_name, row.checksum]));
    for (const name of names) {
      const sql = await readFile(path.join(dir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      const known = done.get(name);
      if (known !== undefined) {
        if (known !== checksum) throw new Error(`Migration ${name} was changed after it was applied; restore it.`);
        continue;
      }
      await client.query("BEGIN");
      try {
        await client.query(sql);
        await client.query(`INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 1)`, [
          randomUUID(),
          checksum,
          name,
        ]);
        await client.query("COMMIT");
        appliedNow.push(name);
      } catch (error) {
        await client.query("ROLLBACK");
        throw new Error(`Database migration ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
  return appliedNow;
}
