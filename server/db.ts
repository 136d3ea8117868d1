/**
 * The Prisma client. The driver adapter follows DATABASE_URL: file: -> better-sqlite3,
 * postgres:// -> pg. Both generated clients have the same model API; the SQLite one
 * names the type.
 */
import { PrismaClient as PostgresClient } from "./generated/postgres/client.ts";
import { PrismaClient } from "./generated/sqlite/client.ts";
import { databaseProvider, databaseUrl } from "./database-url.ts";
import { createAdapterFactory } from "./db-adapter.ts";
import type { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import type { PrismaPg } from "@prisma/adapter-pg";

export type Db = PrismaClient;

export function createDb(url = databaseUrl()): Db {
  const adapter = createAdapterFactory(url);
  if (databaseProvider(url) === "sqlite") return new PrismaClient({ adapter: adapter as PrismaBetterSQLite3 });
  // Same models, same API: only the SQL dialect differs.
  return new PostgresClient({ adapter: adapter as PrismaPg }) as unknown as Db;
}
