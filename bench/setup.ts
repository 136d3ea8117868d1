/**
 * What every benchmark needs: a scratch directory, Hangar on its own database there with
 * the tiny guest registered, an admin caller, SSH readiness, and medians.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { createCaller } from "../server/api/root.ts";
import { IN_PROCESS } from "../server/api/trpc.ts";
import { createDb } from "../server/db.ts";
import { sshOptions } from "../server/driver/qemu/manager.ts";
import { envFor, type Env } from "../server/env.ts";
import { createHangar, type Hangar } from "../server/hangar.ts";
import { migrateDatabase } from "../server/migrate.ts";

export const guestDir = path.resolve(process.env.HANGAR_GUEST_DIR ?? "data/images/hangar-tiny");

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/**
 * Polls `ssh … true` until the guest answers. A 1 s connect timeout (ssh keeps the first
 * value of an option): before the guest has its address, qemu's user network holds a
 * connection open, and a longer wait would measure the poll instead of the boot.
 */
export async function waitForSsh(port: number, keyFile: string): Promise<void> {
  for (;;) {
    const result = await execa("ssh", ["-o", "ConnectTimeout=1", ...sshOptions(port, keyFile), "--", "root@127.0.0.1", "true"], { reject: false });
    if (result.exitCode === 0) return;
    await sleep(50);
  }
}

/** The host's busy and total CPU time so far, from /proc/stat (in clock ticks). */
async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle and iowait
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/**
 * Waits until the host's CPUs are mostly idle (at most 15 % busy over each of two 250 ms
 * windows), up to 30 s: what a pool refilled or a VM released leaves running (a guest
 * finishing its boot, writeback) would otherwise be measured with the next side.
 */
export async function untilQuiet(): Promise<void> {
  const deadline = Date.now() + 30_000;
  let quietWindows = 0;
  let before = await cpuTicks();
  while (quietWindows < 2 && Date.now() < deadline) {
    await sleep(250);
    const now = await cpuTicks();
    const busy = (now.busy - before.busy) / Math.max(1, now.total - before.total);
    quietWindows = busy <= 0.15 ? quietWindows + 1 : 0;
    before = now;
  }
}

export async function adminCaller(hangar: Hangar) {
  const email = "bench@hangar.local";
  const user = await hangar.db.user.upsert({ where: { email }, create: { id: randomUUID(), email, name: "bench", role: "admin" }, update: {} });
  return createCaller({ hangar, transport: IN_PROCESS, principal: { userId: user.id, email, role: "admin", via: "session" }, actor: email });
}

export interface Bench {
  work: string;
  hangar: Hangar;
  api: Awaited<ReturnType<typeof adminCaller>>;
  imageId: string;
}

/**
 * Runs `body` with Hangar on a scratch state directory (DATABASE_URL, if set, picks the
 * database) and removes everything afterwards, its VMs' qemus included; a failure sets the exit code.
 */
export function runBench(name: string, body: (bench: Bench) => Promise<void>, settings: Partial<Env> = {}): void {
  const work = mkdtempSync(path.join(os.tmpdir(), `hangar-bench-${name}-`));
  void (async () => {
    const stateDir = path.join(work, "state");
    const databaseUrl = process.env.DATABASE_URL ?? `file:${path.join(stateDir, "hangar.db")}`;
    await migrateDatabase(databaseUrl);
    const hangar = createHangar({ env: envFor({ stateDir, databaseUrl, guestDir }, { NODE_ENV: "production", ...settings }), db: createDb(databaseUrl) });
    try {
      const image = await hangar.images.ensureBuiltinImage(guestDir);
      if (!image) throw new Error(`no tiny guest at ${guestDir}; run scripts/setup.sh`);
      await body({ work, hangar, api: await adminCaller(hangar), imageId: image.id });
    } finally {
      // A bench that failed half way leaves VMs running; their state directory goes below.
      for (const { id } of await hangar.db.vm.findMany({ select: { id: true } }))
        await hangar
          .driverFor(id)
          .kill()
          .catch(() => undefined);
      hangar.terminals.close();
      hangar.consoles.closeAll();
      await hangar.pools.close();
      await hangar.db.$disconnect();
    }
  })()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => rmSync(work, { recursive: true, force: true }));
}
