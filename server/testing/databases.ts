/**
 * Test databases. Each test gets its own copy of a migrated template: a file copy on
 * SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL (HANGAR_TEST_DB=postgres, server at
 * HANGAR_TEST_POSTGRES, default the machine's postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from "node:crypto";
import { copyFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { migrateDatabase } from "../migrate.ts";

export type TestDbKind = "sqlite" | "postgres";

export function testDbKind(): TestDbKind {
  return process.env.HANGAR_TEST_DB === "postgres" ? "postgres" : "sqlite";
}

const adminUrl = () => process.env.HANGAR_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

function databaseUrlFor(name: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Makes and migrates the template; returns its reference (a file path or a database name). */
export async function createTemplate(workDir: string): Promise<string> {
  if (testDbKind() === "sqlite") {
    const file = path.join(workDir, "template.db");
    await migrateDatabase(`file:${file}`);
    return file;
  }
  const name = `hangar_tpl_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  await migrateDatabase(databaseUrlFor(name));
  return name;
}

export async function dropTemplate(template: string): Promise<void> {
  if (testDbKind() === "postgres") await admin((c) => c.query(`DROP DATABASE IF EXISTS ${template}`));
}

/** A fresh database for one test from the template; returns its URL and how to drop it. */
export async function createTestDatabase(template: string, stateDir: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (testDbKind() === "sqlite") {
    const file = path.join(stateDir, "hangar.db");
    copyFileSync(template, file);
    return { url: `file:${file}`, drop: async () => undefined };
  }
  const name = `hangar_t_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  return { url: databaseUrlFor(name), drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

/** An empty database, not from the template (migration tests bring it up themselves); returns its URL and how to drop it. */
export async function createEmptyDatabase(workDir: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (testDbKind() === "sqlite") return { url: `file:${path.join(workDir, `empty-${randomBytes(4).toString("hex")}.db`)}`, drop: async () => undefined };
  const name = `hangar_e_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return { url: databaseUrlFor(name), drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}
