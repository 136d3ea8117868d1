/**
 * Brings the database schema up to date at start-up: `prisma migrate deploy`, which runs
 * through Prisma's wasm schema engine and our driver adapter (prisma.config.ts).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function migrateDatabase(databaseUrl: string): Promise<void> {
  const prisma = path.join(root, "node_modules", ".bin", "prisma");
  const result = await execa(prisma, ["migrate", "deploy"], {
    cwd: root,
    env: { DATABASE_URL: databaseUrl },
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0) throw new Error(`Database migration failed:\n${result.all}`);
}
