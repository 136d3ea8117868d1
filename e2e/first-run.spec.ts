// A newcomer's first run, as the README tells it: a Hangar of its own on the embedded SQLite
// default (no admin given in the environment), the setup code it prints, the first admin made
// in the browser, then a first VM from the built-in image created, started, watched booting on
// its serial console, stopped and deleted.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "@playwright/test";
import { execa, type ResultPromise } from "execa";
import { freePort, killLeftovers } from "../server/testing/processes.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const guestDir = process.env.HANGAR_GUEST_DIR ?? path.join(root, "data", "images", "hangar-tiny");

test.use({ storageState: { cookies: [], origins: [] } });

let server: ResultPromise | undefined;
let stateDir: string | undefined;

test.afterAll(async () => {
  server?.kill("SIGTERM");
  await server?.catch(() => undefined);
  if (stateDir) {
    // A VM the test did not get to delete keeps running after its Hangar stops.
    killLeftovers(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test("a newcomer creates the first admin with the printed setup code, then a first VM, and watches it boot", async ({ page }) => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-first-run-"));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const { HANGAR_ADMIN_EMAIL: _email, HANGAR_ADMIN_PASSWORD: _password, DATABASE_URL: _database, ...inherited } = process.env;
  server = execa(process.execPath, ["--import", "tsx", path.join(root, "server", "main.ts")], {
    cwd: root,
    env: { ...inherited, NODE_ENV: "production", HOST: "127.0.0.1", PORT: String(port), HANGAR_STATE_DIR: stateDir, HANGAR_GUEST_DIR: guestDir },
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    all: true,
    buffer: false,
  });
  let printed = "";
  server.all?.on("data", (chunk: Buffer) => (printed += chunk.toString("utf8")));
  await expect.poll(() => printed, { timeout: 120_000 }).toMatch(/listening on/);
  const setupCode = /with the setup code ([0-9a-f]+)/.exec(printed)?.[1];
  expect(setupCode, printed).toBeTruthy();

  // The dashboard sends a visitor of a Hangar without users to the first-admin form.
  await page.goto(origin);
  await expect(page).toHaveURL(`${origin}/setup`);
  await page.getByLabel("Setup code").fill("not-the-code");
  await page.getByLabel("Name").fill("Ada");
  await page.getByLabel("Email").fill("ada@example.org");
  await page.getByLabel("Password").fill("a long first password");
  await page.getByRole("button", { name: /create/i }).click();
  await expect(page.getByRole("alert").filter({ hasText: /setup code/i })).toBeVisible();
  await page.getByLabel("Setup code").fill(setupCode ?? "");
  await page.getByRole("button", { name: /create/i }).click();
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
  await expect(page.getByText("ada@example.org · admin")).toBeVisible();

  // A first VM from the built-in image, which the New VM dialog picks.
  await page.getByRole("button", { name: "New VM" }).click();
  const dialog = page.getByRole("dialog", { name: "New VM" });
  await dialog.getByLabel("Name", { exact: true }).fill("first");
  // Started as it is created, as Proxmox's "Start after created" does.
  await dialog.getByLabel("Start it now").check();
  await dialog.getByRole("button", { name: "Create VM" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Created VM first and started it." })).toBeVisible({ timeout: 60_000 });
  const row = page.locator('[data-testid="vm-row"][data-vm-name="first"]');
  await expect(row.getByTestId("vm-state")).toHaveText("Running", { timeout: 60_000 });

  // Its page: the serial console, where the guest's login prompt answers a newline.
  await row.getByRole("link", { name: "first" }).click();
  await expect(page.getByRole("heading", { name: "first" })).toBeVisible();
  const terminal = page.getByTestId("terminal-console");
  await expect(terminal).toHaveAttribute("data-phase", "connected", { timeout: 60_000 });
  const screen = terminal.locator(".xterm-accessibility-tree");
  await expect(async () => {
    await terminal.locator(".xterm").click();
    await page.keyboard.type("\n");
    await expect(screen).toContainText("login:", { timeout: 5000 });
  }).toPass({ timeout: 90_000 });
  await page.keyboard.type("root\n");
  // What is typed before the shell's prompt, login throws away.
  await expect(screen).toContainText("root@first:~#", { timeout: 60_000 });
  await page.keyboard.type("uname -s\n");
  await expect(screen).toContainText("Linux", { timeout: 60_000 });
  // The page's serial tail follows what the guest prints, with no Refresh and no change to the VM.
  await page.keyboard.type("echo tail-$((6*7))\n");
  await expect(page.getByTestId("serial-tail")).toContainText("tail-42", { timeout: 30_000 });

  // Back to the list: stop, then delete.
  await page.goBack();
  await row.getByRole("button", { name: "Stop", exact: true }).click();
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped", { timeout: 90_000 });
  page.once("dialog", (confirm) => void confirm.accept());
  await row.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(row).toHaveCount(0, { timeout: 60_000 });
});
