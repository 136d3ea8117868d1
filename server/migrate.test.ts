// Upgrading: a database made by an older Hangar (its migrations only, its rows written as it
// wrote them) is migrated at start-up with every row kept; a database a newer Hangar has
// migrated is refused before anything is applied to it.
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { databaseProvider } from "./database-url.ts";
import { createDb } from "./db.ts";
import { NewerDatabaseError, knownMigrations, migrateDatabase } from "./migrate.ts";
import { createEmptyDatabase, testDbKind } from "./testing/databases.ts";
import { REPO_ROOT } from "./testing/paths.ts";

/** The newest migration of be070f7, a release four migrations behind this one. */
const OLD_RELEASE = "20261204120000_vm_protection";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-migrate-"));
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop();
  rmSync(work, { recursive: true, force: true });
});

async function emptyDatabase(): Promise<string> {
  const { url, drop } = await createEmptyDatabase(work);
  drops.push(drop);
  return url;
}

/** SQL on either provider, with `?` placeholders. */
interface Sql {
  run(sql: string, params?: unknown[]): Promise<void>;
  rows<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A boolean and a time as this provider's rows hold them. */
  bool(value: boolean): unknown;
  time(value: Date): unknown;
  close(): Promise<void>;
}

async function connect(url: string): Promise<Sql> {
  if (databaseProvider(url) === "sqlite") {
    const db = new Database(url.slice("file:".length));
    return {
      run: async (sql, params = []) => {
        if (params.length === 0) db.exec(sql);
        else db.prepare(sql).run(...params);
      },
      rows: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[],
      bool: (value) => (value ? 1 : 0),
      // As Prisma's SQLite adapter writes DateTime columns.
      time: (value) => value.toISOString().replace("Z", "+00:00"),
      close: async () => void db.close(),
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let n = 0;
  const numbered = (sql: string) => sql.replace(/\?/g, () => `$${++n}`);
  return {
    run: async (sql, params = []) => {
      n = 0;
      await client.query(numbered(sql), params);
    },
    rows: async <T>(sql: string, params: unknown[] = []) => {
      n = 0;
      return (await client.query(numbered(sql), params)).rows as T[];
    },
    bool: (value) => value,
    time: (value) => value,
    close: () => client.end(),
  };
}

/**
 * Brings an empty database to `last` as the Hangar of that time did: each migration's SQL in
 * turn, recorded in Prisma's `_prisma_migrations` with its sha256.
 */
async function migrateThrough(url: string, last: string): Promise<string[]> {
  const provider = databaseProvider(url);
  const names = (await knownMigrations(provider)).filter((name) => name <= last);
  const sql = await connect(url);
  try {
    await sql.run(
      provider === "sqlite"
        ? `CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME, "migration_name" TEXT NOT NULL,
           "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`
        : `CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
           "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
           "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`,
    );
    for (const name of names) {
      const text = readFileSync(path.join(REPO_ROOT, "prisma", provider, "migrations", name, "migration.sql"), "utf8");
      await sql.run(text);
      await recordMigration(sql, name, createHash("sha256").update(text).digest("hex"));
    }
  } finally {
    await sql.close();
  }
  return names;
}

async function recordMigration(sql: Sql, name: string, checksum: string): Promise<void> {
  const now = sql.time(new Date());
  await sql.run(`INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, 1)`, [
    randomUUID(),
    checksum,
    now,
    name,
    now,
  ]);
}

async function appliedMigrations(url: string): Promise<string[]> {
  const sql = await connect(url);
  try {
    const rows = await sql.rows<{ migration_name: string }>(`SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name`);
    return rows.map((row) => row.migration_name);
  } finally {
    await sql.close();
  }
}

describe(`upgrading the database (${testDbKind()})`, () => {
  it("keeps every row an older release wrote, and reads them with today's models", async () => {
    const url = await emptyDatabase();
    const old = await migrateThrough(url, OLD_RELEASE);
    const all = await knownMigrations(databaseProvider(url));
    expect(all.length - old.length).toBeGreaterThanOrEqual(3);

    // What that release kept, written with its columns only.
    const sql = await connect(url);
    const t = (iso: string) => sql.time(new Date(iso));
    const created = "2026-12-03T10:00:00.000Z";
    try {
      await sql.run(
        `INSERT INTO "User" (id, name, email, "emailVerified", "createdAt", "updatedAt", role, disabled, "maxVms", "maxCpus", "maxMemoryMiB") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ["u1", "Olive", "op@example.com", sql.bool(false), t(created), t(created), "operator", sql.bool(false), 8, 10, 4096],
      );
      await sql.run(`INSERT INTO "Session" (id, "expiresAt", token, "createdAt", "updatedAt", "userId") VALUES (?, ?, ?, ?, ?, ?)`, [
        "s1",
        t("2027-01-01T00:00:00.000Z"),
        "session-token",
        t(created),
        t(created),
        "u1",
      ]);
      await sql.run(`INSERT INTO "ApiToken" (id, name, "userId", hash, prefix, "readOnly", "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        "tok1",
        "ci",
        "u1",
        "a".repeat(64),
        "hgr_abcd",
        sql.bool(true),
        t(created),
      ]);
      await sql.run(`INSERT INTO "SshKey" (id, "userId", name, "publicKey", fingerprint, "createdAt") VALUES (?, ?, ?, ?, ?, ?)`, [
        "k1",
        "u1",
        "laptop",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtest",
        "SHA256:test",
        t(created),
      ]);
      await sql.run(`INSERT INTO "Host" (id, name, "apiAddress", "heartbeatAt", accelerator, "freeMemoryMiB", "bootId") VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        "h1",
        "alpha",
        "http://127.0.0.1:3000",
        t(created),
        "tcg",
        2048,
        "boot-1",
      ]);
      await sql.run(`INSERT INTO "Image" (id, name, path, sha256, "sizeBytes", kernel, status, "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        "img1",
        "hangar-tiny",
        "/state/images/x.qcow2",
        "b".repeat(64),
        123456789,
        "/state/images/x.vmlinuz",
        "ready",
        t(created),
      ]);
      await sql.run(`INSERT INTO "Image" (id, name, path, status, "createdAt") VALUES (?, ?, ?, ?, ?)`, [
        "img2",
        "half-imported",
        "/state/images/y.qcow2",
        "importing",
        t(created),
      ]);
      await sql.run(`INSERT INTO "Pool" (id, name, "imageId", cpus, "memoryMiB", size, staging, "hostId", "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        "p1",
        "warm",
        "img1",
        1,
        256,
        2,
        "Suspended",
        "h1",
        t(created),
      ]);
      await sql.run(
        `INSERT INTO "Vm" (id, name, state, "imageId", cpus, "memoryMiB", autostart, "autostartOrder", "autostartDelaySec", protection, description, tags,
           "sshPort", network, pid, machine, "readyState", "ownerId", "hostId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          "vm1",
          "web-run",
          "Running",
          "img1",
          2,
          512,
          sql.bool(true),
          2,
          5,
          sql.bool(true),
          "The web front end",
          "prod web",
          45295,
          "nat",
          4242,
          "pc-q35-7.2",
          "ready",
          "u1",
          "h1",
          t(created),
          t(created),
        ],
      );
      await sql.run(
        `INSERT INTO "Vm" (id, name, state, "imageId", cpus, "memoryMiB", "poolId", "hostId", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ["vm2", "warm-1", "Suspended", "img1", 1, 256, "p1", "h1", t(created), t(created)],
      );
      await sql.run(`INSERT INTO "PortForward" (id, "vmId", "hostPort", "guestPort", "boundPort") VALUES (?, ?, ?, ?, ?)`, ["f1", "vm1", 0, 8080, 36837]);
      await sql.run(
        `INSERT INTO "Event" (id, stream, actor, action, "vmId", "vmName", "userId", "fromState", "toState", ok, message, "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ["e1", "vm", "token ci (op@example.com)", "start", "vm1", "web-run", "u1", "Stopped", "Running", sql.bool(true), "Running as pid 4242", t(created)],
      );
      await sql.run(`INSERT INTO "Event" (id, stream, actor, action, target, ok, message, "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        "e2",
        "audit",
        "admin@example.com",
        "user-create",
        "op@example.com",
        sql.bool(true),
        "Added op@example.com as operator",
        t(created),
      ]);
      await sql.run(
        `INSERT INTO "TerminalTicket" (hash, "userId", actor, "vmId", kind, "readOnly", "viaToken", "expiresAt", "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ["c".repeat(64), "u1", "op@example.com", "vm1", "console", sql.bool(false), sql.bool(true), t("2027-01-01T00:00:00.000Z"), t(created)],
      );
    } finally {
      await sql.close();
    }

    // This release's start-up.
    expect(await migrateDatabase(url)).toEqual(all.filter((name) => !old.includes(name)));
    expect(await appliedMigrations(url)).toEqual(all);
    expect(await migrateDatabase(url)).toEqual([]);

    const db = createDb(url);
    try {
      const user = await db.user.findUniqueOrThrow({ where: { id: "u1" }, include: { sessions: true, tokens: true, sshKeys: true } });
      expect(user).toMatchObject({ email: "op@example.com", role: "operator", disabled: false, maxVms: 8, maxCpus: 10, maxMemoryMiB: 4096 });
      expect(user.sessions.map((s) => s.token)).toEqual(["session-token"]);
      expect(user.tokens).toMatchObject([{ name: "ci", hash: "a".repeat(64), readOnly: true, revokedAt: null, expiresAt: null }]);
      expect(user.sshKeys).toMatchObject([{ name: "laptop", fingerprint: "SHA256:test" }]);

      const web = await db.vm.findUniqueOrThrow({ where: { id: "vm1" }, include: { ports: true } });
      expect(web).toMatchObject({
        name: "web-run",
        state: "Running",
        cpus: 2,
        memoryMiB: 512,
        pid: 4242,
        sshPort: 45295,
        autostart: true,
        autostartOrder: 2,
        autostartDelaySec: 5,
        protection: true,
        description: "The web front end",
        tags: "prod web",
        machine: "pc-q35-7.2",
        ownerId: "u1",
        hostId: "h1",
        restartPending: false,
      });
      expect(web.createdAt.toISOString()).toBe(created);
      expect(web.ports).toMatchObject([{ hostPort: 0, guestPort: 8080, boundPort: 36837 }]);
      expect(await db.vm.findUniqueOrThrow({ where: { id: "vm2" } })).toMatchObject({ state: "Suspended", poolId: "p1", restartPending: false });
      expect(await db.pool.findUniqueOrThrow({ where: { id: "p1" } })).toMatchObject({
        name: "warm",
        size: 2,
        staging: "Suspended",
        hostId: "h1",
        deletingAt: null,
      });

      expect(await db.image.findUniqueOrThrow({ where: { id: "img1" } })).toMatchObject({ sizeBytes: 123456789n, status: "ready", importHostId: null });
      // An import the upgrade cut short has no host: the first start fails it (images.failInterruptedImports).
      expect(await db.image.findUniqueOrThrow({ where: { id: "img2" } })).toMatchObject({ status: "importing", importHostId: null });
      expect(await db.host.findUniqueOrThrow({ where: { id: "h1" } })).toMatchObject({ name: "alpha", bootId: "boot-1", bridges: "" });
      expect(await db.terminalTicket.findFirstOrThrow()).toMatchObject({ vmId: "vm1", viaToken: true, tokenId: null });

      const events = await db.event.findMany({ orderBy: { id: "asc" } });
      expect(events).toMatchObject([
        { stream: "vm", action: "start", vmId: "vm1", vmName: "web-run", fromState: "Stopped", toState: "Running", ok: true, requestId: null },
        { stream: "audit", action: "user-create", target: "op@example.com", vmId: null },
      ]);
    } finally {
      await db.$disconnect();
    }
  });

  it("refuses a database a newer Hangar has migrated, before applying anything to it", async () => {
    const url = await emptyDatabase();
    const old = await migrateThrough(url, OLD_RELEASE);
    const sql = await connect(url);
    try {
      await recordMigration(sql, "29991231000000_from_a_newer_hangar", "d".repeat(64));
    } finally {
      await sql.close();
    }
    await expect(migrateDatabase(url)).rejects.toBeInstanceOf(NewerDatabaseError);
    await expect(migrateDatabase(url)).rejects.toThrow(
      /^This database was migrated by a newer Hangar: migration 29991231000000_from_a_newer_hangar is not in this version \(whose newest is \d{14}_\w+\)\. Hangar does not run on a database newer than itself; start the newer version again, or restore the backup taken before the upgrade to run this one\.$/,
    );
    // Nothing of this release was applied: the database is as the newer one left it.
    expect(await appliedMigrations(url)).toEqual([...old, "29991231000000_from_a_newer_hangar"]);
  });
});

// The file itself: only the SQLite pass has one (PostgreSQL's files are its server's).
if (testDbKind() === "sqlite") {
  describe("the SQLite file", () => {
    it("leaves the SQLite file readable by Hangar's user alone, whatever the umask", async () => {
      const url = await emptyDatabase();
      const file = url.slice("file:".length);
      const umask = process.umask(0o022);
      try {
        await migrateDatabase(url);
      } finally {
        process.umask(umask);
      }
      // Sessions and the auth secret are in it: not for the user qemu drops to, nor anyone else.
      expect(statSync(file).mode & 0o777).toBe(0o600);
    });

    it("starts on a SQLite database a process killed in the middle of a write left (a hot journal)", async () => {
      const url = await emptyDatabase();
      await migrateDatabase(url);
      const file = url.slice("file:".length);
      // A writer killed -9 with its transaction half in the file: a small cache spills the pages.
      const writer = [
        "const Database = require('better-sqlite3');",
        `const db = new Database(${JSON.stringify(file)});`,
        "db.pragma('cache_size = 1');",
        "db.exec('BEGIN IMMEDIATE; CREATE TABLE half_written (x)');",
        "for (let i = 0; i < 50; i++) db.prepare('INSERT INTO half_written VALUES (?)').run('y'.repeat(4000));",
        "process.kill(process.pid, 'SIGKILL');",
      ].join("\n");
      expect(spawnSync(process.execPath, ["-e", writer], { cwd: REPO_ROOT }).signal).toBe("SIGKILL");
      expect(existsSync(`${file}-journal`)).toBe(true);
      expect(await migrateDatabase(url)).toEqual([]);
      // The half-written transaction was rolled back, and the rows are readable.
      const sql = await connect(url);
      try {
        expect(await sql.rows("SELECT name FROM sqlite_master WHERE name = 'half_written'")).toEqual([]);
      } finally {
        await sql.close();
      }
    });
  });
}
