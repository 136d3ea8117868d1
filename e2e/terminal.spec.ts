import { expect, test, type Page } from "@playwright/test";
import { ADMIN, api, removeVm, uniqueName } from "./hangar.ts";

const LONG = { timeout: 60_000 };
let vmId = "";

test.beforeAll(async () => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-term"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 256 });
  vmId = vm.id;
  await api.vm.start.mutate({ id: vm.id });
  // Booted when SSH answers a command.
  await expect.poll(async () => (await api.vm.exec.mutate({ id: vm.id, command: ["true"] }).catch(() => undefined))?.exitCode, LONG).toBe(0);
});
test.afterAll(async () => {
  await removeVm(vmId);
});

const screen = (page: Page, kind: string) => page.getByTestId(`terminal-${kind}`).locator(".xterm-accessibility-tree");

async function openConsole(page: Page) {
  await page.goto(`/vms/${vmId}`);
  await expect(page.getByTestId("terminal-console")).toHaveAttribute("data-phase", "connected", LONG);
}

async function typeInto(page: Page, kind: string, text: string) {
  await page.getByTestId(`terminal-${kind}`).locator(".xterm").click();
  await page.keyboard.type(text);
}

test("a person logs in on the serial console and runs uname; a reload shows it again", async ({ page }) => {
  // The terminal (xterm, the WebSocket) runs under Hangar's Content-Security-Policy.
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await openConsole(page);
  await typeInto(page, "console", "\n");
  await expect(screen(page, "console")).toContainText("login:", LONG);
  await typeInto(page, "console", "root\n");
  // What is typed before the shell's prompt, login throws away.
  await expect(screen(page, "console")).toContainText(":~#", LONG);
  await typeInto(page, "console", "uname -a\n");
  await expect(screen(page, "console")).toContainText("Linux", LONG);
  await page.reload();
  await expect(page.getByTestId("terminal-console")).toHaveAttribute("data-phase", "connected", LONG);
  await expect(screen(page, "console")).toContainText("Linux", LONG);
  expect(violations).toEqual([]);
});

test("two people watching the console see the same output", async ({ page, browser }) => {
  const other = await browser.newContext();
  const second = await other.newPage();
  await openConsole(page);
  await openConsole(second);
  await typeInto(page, "console", "echo shared-$((40+2))\n");
  await expect(screen(page, "console")).toContainText("shared-42", LONG);
  await expect(screen(second, "console")).toContainText("shared-42", LONG);
  await other.close();
});

test("an SSH shell runs a command, and closing the tab leaves no session behind", async ({ page }) => {
  await page.goto(`/vms/${vmId}`);
  // Reached from the keyboard, as tabs are: the arrows move from Console past Display to Shell.
  await page.getByRole("tab", { name: "Console" }).focus();
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await expect(page.getByRole("tab", { name: "Shell" })).toBeFocused();
  await expect(page.getByRole("tab", { name: "Shell" })).toHaveAttribute("aria-selected", "true");
  await expect(page.getByTestId("terminal-shell")).toHaveAttribute("data-phase", "connected", LONG);
  // Hangar logs in as its own account, not root: the prompt is hangar's.
  await expect(screen(page, "shell")).toContainText("hangar@", LONG);
  await typeInto(page, "shell", "echo $((6*7)) as $(whoami)\n");
  await expect(screen(page, "shell")).toContainText("42 as hangar", LONG);
  expect((await api.terminal.sessions.query()).ssh).toBeGreaterThan(0);
  await page.close();
  await expect.poll(async () => (await api.terminal.sessions.query()).ssh, LONG).toBe(0);
  await expect.poll(async () => (await api.terminal.sessions.query()).shell, LONG).toBe(0);
});

test("a window title with HTML from the guest shows as text, not markup", async ({ page }) => {
  await openConsole(page);
  await api.vm.exec.mutate({ id: vmId, command: ["sh", "-c", "printf '\\033]0;<img src=x id=injected>\\007' > /dev/ttyS0"], asRoot: true });
  await expect(page.getByTestId("terminal-phase")).toContainText("<img src=x id=injected>", LONG);
  await expect(page.locator("#injected")).toHaveCount(0);
});

test.describe("signing out", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("closes the terminals opened from that session", async ({ page }) => {
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText(`${ADMIN.email} · admin`)).toBeVisible();
    await openConsole(page);
    const before = (await api.terminal.sessions.query()).console;
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/sign-in$/);
    await expect.poll(async () => (await api.terminal.sessions.query()).console, LONG).toBe(before - 1);
  });
});
