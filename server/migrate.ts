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
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import pg from "pg";
import { databaseProvider } from "./database-url.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function migrateDatabase(databaseUrl: string): Promise<void> {
  if (databaseProvider(databaseUrl) === "postgres") return migratePostgres(databaseUrl);
  const prisma = path.join(root, "node_modules", ".bin", "prisma");
  const result = await execa(prisma, ["migrate", "deploy"], {
    cwd: root,
    env: { DATABASE_URL: databaseUrl },
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0) throw new Error(`Database migration failed:\n${result.all}`);
}

/** An arbitrary constant: the advisory lock two Hangar processes migrating at once share. */
const MIGRATION_LOCK = 72_616_001;

async function migratePostgres(databaseUrl: string): Promise<void> {
  const dir = path.join(root, "prisma", "postgres", "migrations");
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
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
    const applied = await client.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const done = new Map(applied.rows.map((row) => [row.migration_name, row.checksum]));
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
      } catch (error) {
        await client.query("ROLLBACK");
        throw new Error(`Database migration ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}
