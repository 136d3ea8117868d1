/**
 * End-to-end tests: Debian's Chromium against the real server (production build) booting
 * real guests under a fresh state directory per run. Build first: `npx next build`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "@playwright/test";
import { ADMIN, STORAGE_STATE, e2ePort } from "./e2e/hangar.ts";

const root = path.dirname(fileURLToPath(import.meta.url));
const port = e2ePort;
const baseURL = `http://127.0.0.1:${port}`;

// The config is evaluated in the runner and again in each worker; the workers inherit the
// runner's environment, so the directory made here is the one the tests read.
process.env.HANGAR_E2E_STATE_DIR ??= fs.mkdtempSync(path.join(os.tmpdir(), "hangar-e2e-"));
const stateDir = process.env.HANGAR_E2E_STATE_DIR;
const guestDir = process.env.HANGAR_GUEST_DIR ?? path.join(root, "data", "images", "hangar-tiny");

export default defineConfig({
  testDir: "e2e",
  globalSetup: "./e2e/global-setup.ts",
  globalTeardown: "./e2e/global-teardown.ts",
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  timeout: 240_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    // Tall enough for a VM page's terminal to be on screen: xterm does not paint (nor update
    // its text for screen readers, which the specs read) while it is scrolled out of view.
    viewport: { width: 1280, height: 1600 },
    storageState: STORAGE_STATE,
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: {
    command: "npx tsx server/main.ts",
    cwd: root,
    url: baseURL,
    reuseExistingServer: false,
    timeout: 180_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      NODE_ENV: "production",
      PORT: String(port),
      HOST: "127.0.0.1",
      HANGAR_STATE_DIR: stateDir,
      HANGAR_GUEST_DIR: guestDir,
      HANGAR_ADMIN_EMAIL: ADMIN.email,
      HANGAR_ADMIN_PASSWORD: ADMIN.password,
      // Every test signs in from 127.0.0.1; the default of 10 a minute is for people.
      HANGAR_SIGNIN_PER_MINUTE: "1000",
      // One loopback address URL imports may reach: a test's own file server (127.0.0.1 stays refused).
      HANGAR_IMPORT_ALLOW: "127.0.0.2/32",
    },
  },
});
