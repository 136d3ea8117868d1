import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["server/**/*.test.ts", "cli/**/*.test.ts", "components/**/*.test.ts"],
    // *.postgres.test.ts need several processes on one shared database: SQLite is one host.
    exclude: process.env.HANGAR_TEST_DB === "postgres" ? [] : ["server/**/*.postgres.test.ts"],
    globalSetup: ["server/testing/global-setup.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
