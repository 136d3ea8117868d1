/**
 * Test fixtures: a fresh state directory with its own copy of the migrated template
 * database, and Hangar services on it (real qemu driver, or a given fake).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { inject } from "vitest";
import { createCaller } from "../api/root.ts";
import { IN_PROCESS } from "../api/trpc.ts";
import type { Role } from "../auth/permissions.ts";
import { createDb } from "../db.ts";
import { envFor, type Env, type Settings } from "../env.ts";
import { createHangar, type Hangar, type HangarOptions } from "../hangar.ts";
import { createTestDatabase } from "./databases.ts";
import { fakeLocalImage } from "./fake-driver.ts";

export interface TestHangar {
  hangar: Hangar;
  env: Env;
  cleanup: () => Promise<void>;
}

export function testEnv(stateDir: string, databaseUrl: string, settings: Partial<Settings> = {}): Env {
  return envFor({ stateDir, databaseUrl, guestDir: inject("guestDir") }, { NODE_ENV: "test", HANGAR_RECONCILE_MS: 500, ...settings });
}

export async function createTestHangar(options: Pick<HangarOptions, "driverFor" | "pool"> & { settings?: Partial<Settings> } = {}): Promise<TestHangar> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-test-"));
  const database = await createTestDatabase(inject("templateDb"), stateDir);
  const env = testEnv(stateDir, database.url, options.settings);
  const db = createDb(env.databaseUrl);
  const hangar = createHangar({ env, db, driverFor: options.driverFor, pool: options.pool, localImage: options.driverFor ? fakeLocalImage : undefined });
  return {
    hangar,
    env,
    cleanup: async () => {
      await hangar.lifecycle.close();
      await db.$disconnect();
      await database.drop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** The built-in tiny guest as an image row. */
export async function tinyImage(hangar: Hangar) {
  const image = await hangar.images.ensureBuiltinImage(hangar.env.guestDir);
  if (!image) throw new Error(`the tiny guest is not built at ${hangar.env.guestDir}`);
  return image;
}

/** A tRPC caller acting as a real user row of `role` (created on first use). */
export async function callerFor(hangar: Hangar, role: Role = "admin", email = `${role}@test.hangar`) {
  const user = await hangar.db.user.upsert({ where: { email }, create: { id: randomUUID(), email, name: role, role }, update: {} });
  return createCaller({ hangar, transport: IN_PROCESS, principal: { userId: user.id, email, role, via: "session" }, actor: email });
}
