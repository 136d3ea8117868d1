// The migrations of each provider must produce exactly the tables and columns of
// prisma/models.prisma, and the two providers must be kept in step.
import { readdirSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { execa } from "execa";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./testing/paths.ts";
import { createTestDatabase, testDbKind } from "./testing/databases.ts";
import { migrateDatabase } from "./migrate.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-drift-"));
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
  rmSync(work, { recursive: true, force: true });
});

type Columns = Record<string, string[]>;

/** The SQL that creates the models from nothing, as Prisma renders it for `provider`. */
async function modelsSql(provider: "sqlite" | "postgres"): Promise<string> {
  const prisma = path.join(REPO_ROOT, "node_modules", ".bin", "prisma");
  const { stdout } = await execa(prisma, ["migrate", "diff", "--from-empty", "--to-schema-datamodel", `prisma/${provider}`, "--script"], { cwd: REPO_ROOT });
  return stdout;
}

function sqliteColumns(file: string): Columns {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'").all() as {
      name: string;
    }[];
    return Object.fromEntries(
      tables.map(({ name }) => [
        name,
        (db.prepare(`PRAGMA table_info("${name}")`).all() as { name: string; type: string; notnull: number }[])
          .map((c) => `${c.name} ${c.type} ${c.notnull ? "not null" : "null"}`)
          .sort(),
      ]),
    );
  } finally {
    db.close();
  }
}

async function postgresColumns(url: string): Promise<Columns> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%'`,
    );
    const columns: Columns = {};
    for (const row of rows) (columns[row.table_name] ??= []).push(`${row.column_name} ${row.data_type} ${row.is_nullable === "NO" ? "not null" : "null"}`);
    for (const list of Object.values(columns)) list.sort();
    return columns;
  } finally {
    await client.end();
  }
}

describe("schema drift", () => {
  it("keeps the SQLite and PostgreSQL migrations in step", () => {
    const names = (provider: string) =>
      readdirSync(path.join(REPO_ROOT, "prisma", provider, "migrations"), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    expect(names("postgres")).toEqual(names("sqlite"));
  });

  it(`migrations give the models' columns on ${testDbKind()}`, async () => {
    const sql = await modelsSql(testDbKind());
    if (testDbKind() === "sqlite") {
      const migrated = path.join(work, "migrated.db");
      await migrateDatabase(`file:${migrated}`);
      const fresh = path.join(work, "fresh.db");
      const db = new Database(fresh);
      db.exec(sql);
      db.close();
      expect(sqliteColumns(migrated)).toEqual(sqliteColumns(fresh));
      expect(Object.keys(sqliteColumns(migrated))).toEqual(expect.arrayContaining(["Event", "Image", "PortForward", "Vm"]));
      return;
    }
    const migrated = await createTestDatabase("template0", work);
    const fresh = await createTestDatabase("template0", work);
    drops.push(migrated.drop, fresh.drop);
    await migrateDatabase(migrated.url);
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    await client.query(sql);
    await client.end();
    expect(await postgresColumns(migrated.url)).toEqual(await postgresColumns(fresh.url));
  });
});
