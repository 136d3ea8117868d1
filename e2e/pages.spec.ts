// Every page of the dashboard, reached through its navigation as a person clicks: each shows
// its heading, with no error in the browser's console and no failed request.
import { expect, test, type Page } from "@playwright/test";
import { ADMIN, api, removeVm, uniqueName } from "./hangar.ts";

let vmId = "";

test.beforeAll(async () => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  vmId = (await api.vm.create.mutate({ name: uniqueName("pages"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 256 })).id;
});
test.afterAll(async () => {
  await removeVm(vmId);
});

/** Problems the browser reports from now on: console errors, page errors, failed requests. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
  });
  return problems;
}

test("every page loads from the navigation with its heading, no console error and no failed request", async ({ page }) => {
  const problems = watchProblems(page);
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
  // The first Tab reaches "Skip to content", which takes the keyboard past the top bar to the page.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#content")).toBeFocused();
  const pages: [link: string, heading: string | RegExp][] = [
    ["Pools", /pools/i],
    ["Hosts", /hosts/i],
    ["Images", /images/i],
    ["Tokens", /tokens/i],
    ["Account", "Account"],
    ["Users", /users/i],
    ["Audit", /audit/i],
    ["VMs", "Virtual machines"],
  ];
  for (const [link, heading] of pages) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).click();
    await expect(page.getByRole("heading", { name: heading, level: 1 })).toBeVisible();
  }

  // A VM's page and an image's page, from their tables.
  const vm = await api.vm.get.query({ id: vmId });
  await page.locator(`[data-testid="vm-row"][data-vm-id="${vmId}"]`).getByRole("link", { name: vm.name }).click();
  await expect(page.getByRole("heading", { name: vm.name, level: 1 })).toBeVisible();
  // Named after the VM, so several VM tabs can be told apart.
  await expect(page).toHaveTitle(`${vm.name} · Hangar`);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Images", exact: true }).click();
  await page.getByRole("link", { name: "hangar-tiny", exact: true }).click();
  await expect(page.getByRole("heading", { name: "hangar-tiny", level: 1 })).toBeVisible();

  expect(problems).toEqual([]);
  // Browsers ask for /favicon.ico on their own at times: it answers with the icon, never a 404
  // in the console.
  const icon = await page.request.get("/favicon.ico");
  expect([icon.status(), icon.headers()["content-type"]]).toEqual([200, "image/svg+xml"]);

  // An address that is no page says so, in the dashboard's frame.
  const missing = await page.goto("/no-such-page");
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole("link", { name: "Hangar", exact: true })).toBeVisible();
  await expect(page).toHaveTitle("Not found · Hangar");
});

test("at a phone's width no page is wider than the screen", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/", "/pools", "/hosts", "/images", "/tokens", "/account", "/users", "/audit", `/vms/${vmId}`]) {
    await page.goto(path);
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(390);
  }
});

test.describe("signed out", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("a link to a page, and a session that ends on it, go through sign-in back to that page", async ({ page, context }) => {
    await page.goto(`/vms/${vmId}`);
    await expect(page).toHaveURL(`/sign-in?next=${encodeURIComponent(`/vms/${vmId}`)}`);
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(`/vms/${vmId}`);
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();

    // The session ends (expired, or signed out elsewhere): the next change asks to sign in, not "Sign in first, or send an API token".
    await context.clearCookies();
    // Refused from now on (401): this change, or a read the page makes meanwhile, sends it to sign-in, whichever comes first.
    const rename = page.getByRole("button", { name: "Rename" });
    await page
      .getByLabel("New name")
      .fill(uniqueName("renamed"), { timeout: 5_000 })
      .then(() => rename.click({ timeout: 5_000 }))
      .catch(() => undefined);
    await expect(page).toHaveURL(`/sign-in?next=${encodeURIComponent(`/vms/${vmId}`)}`);
  });
});

test.describe("as a viewer", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("every page the navigation offers a viewer loads with no failed request, and the admin's pages are not offered", async ({ page }) => {
    const viewer = { email: `${uniqueName("viewer")}@e2e.hangar`, password: "a good long password" };
    await api.user.add.mutate({ ...viewer, name: "viewer", role: "viewer" });
    const problems = watchProblems(page);
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(viewer.email);
    await page.getByLabel("Password").fill(viewer.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
    const navigation = page.getByRole("navigation", { name: "Main" });
    for (const adminOnly of ["Users", "Audit"]) await expect(navigation.getByRole("link", { name: adminOnly, exact: true })).toHaveCount(0);
    const links = await navigation.getByRole("link").allTextContents();
    // Importing images is for admins; a viewer is told so instead of a form that would be refused.
    await navigation.getByRole("link", { name: "Images", exact: true }).click();
    await expect(page.getByRole("heading", { name: "Import an image" })).toHaveCount(0);
    await expect(page.getByText("Only admins see the form that imports images.", { exact: false })).toBeVisible();
    for (const link of links) {
      await navigation.getByRole("link", { name: link, exact: true }).click();
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    }
    expect(problems).toEqual([]);
  });
});
