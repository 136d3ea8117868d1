import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { databaseProvider } from "./database-url.ts";

/** The driver adapter for a database URL: better-sqlite3 for file:, pg for postgres://. */
export function createAdapterFactory(url: string): PrismaBetterSQLite3 | PrismaPg {
  if (databaseProvider(url) === "sqlite") {
    const file = url.slice("file:".length);
    mkdirSync(path.dirname(file), { recursive: true });
    return new PrismaBetterSQLite3({ url: file, timeout: 10_000 });
  }
  return new PrismaPg({ connectionString: url });
}
