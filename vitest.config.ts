import { defineConfig } from "vitest/config";

const postgres = process.env.HANGAR_TEST_DB === "postgres";

// *.postgres.test.ts need several processes on one shared database: SQLite is one host.
const severalHosts = ["server/**/*.postgres.test.ts"];

// Tests whose subject is qemu, a guest or the shipped package, not the database: the driver's
// own (no database at all), the Debian boot, suspend/clone/snapshots, the guest's account,
// the installer ISO, guest metrics, the client package and the service unit. The SQLite pass
// runs them; on PostgreSQL they would boot the same guests again for no new question, and the
// suite must fit its time. Lifecycle, the reconciler, crashes and terminals on real qemu run
// on both.
const guestOnly = [
  "server/driver/**",
  // Decompression through xz, gzip and zstd, with no database at all.
  "server/images/intake.test.ts",
  "server/vms/debian-api.test.ts",
  "server/vms/suspend-clone.test.ts",
  "server/vms/guest-user.test.ts",
  "server/vms/cdrom.test.ts",
  "server/metrics/metrics-real.test.ts",
  "server/client-package.test.ts",
  "server/service.test.ts",
  // The CLI and a pool of real guests: their database work is the API's and the pool
  // keeper's, which the fake-driver tests run on both databases.
  "cli/cli.test.ts",
  "server/pool/pool-real.test.ts",
];

export default defineConfig({
  test: {
    include: ["server/**/*.test.ts", "cli/**/*.test.ts", "components/**/*.test.ts"],
    exclude: postgres ? guestOnly : severalHosts,
    globalSetup: ["server/testing/global-setup.ts"],
    setupFiles: ["server/testing/quiet-log.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
