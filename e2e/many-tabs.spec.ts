/**
 * Many tabs of one browser: each holds its live updates on the tab's WebSocket, not on one
 * of the six HTTP connections a browser allows a host, so eight tabs all show a change and
 * a ninth still loads. A new tab's first rows come with the page, and its live stream starts
 * from that read: it is sent what changed since, and reads no list.
 */
import { expect, test, type Page } from "@playwright/test";
import { api, removeVm, uniqueName } from "./hangar.ts";

let vmId: string | undefined;

test.afterEach(async () => {
  if (vmId) await removeVm(vmId);
});

test("eight tabs all show a change, and a ninth loads", async ({ context }) => {
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  const name = uniqueName("tabs");
  const vm = await api.vm.create.mutate({ name, imageId: tiny!.id, cpus: 1, memoryMiB: 128 });
  vmId = vm.id;

  const tabs: Page[] = [];
  for (let i = 0; i < 8; i++) {
    const page = await context.newPage();
    await page.goto("/");
    await expect(page.locator(".live-on")).toBeVisible();
    tabs.push(page);
  }
  const state = (page: Page) => page.locator(`[data-testid="vm-row"][data-vm-name="${name}"] [data-testid="vm-state"]`);
  for (const page of tabs) await expect(state(page)).toHaveText("Stopped");

  await api.vm.start.mutate({ id: vm.id });
  for (const page of tabs) await expect(state(page)).toHaveText("Running");

  const ninth = await context.newPage();
  await ninth.goto("/");
  await expect(state(ninth)).toHaveText("Running");
  await api.vm.stop.mutate({ id: vm.id, timeoutSec: 0 });
  for (const page of [...tabs, ninth]) await expect(state(page)).toHaveText("Stopped");
});

test("a new tab shows its first rows without reading the list, and a change made before its live stream started", async ({ page }) => {
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  const name = uniqueName("seed");
  vmId = (await api.vm.create.mutate({ name, imageId: tiny!.id, cpus: 1, memoryMiB: 128 })).id;
  const listReads: string[] = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.split(",").some((part) => part.endsWith("vm.list"))) listReads.push(request.url());
  });
  // The tab's subscription is held back until the VM has changed: the change falls between
  // the page's list read and the stream's start.
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.routeWebSocket(/\/api\/trpc-ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => void released.then(() => server.send(message)));
  });
  await page.goto("/");
  const description = page.locator(`[data-testid="vm-row"][data-vm-name="${name}"]`);
  await expect(description).toBeVisible();
  await api.vm.setTags.mutate({ id: vmId, tags: ["seeded-then-changed"] });
  release();
  await expect(description).toContainText("seeded-then-changed");
  await expect(page.locator(".live-on")).toBeVisible();
  expect(listReads).toEqual([]);
});

test("the first rows are in the page as it arrives, inert until the tab's scripts run, and then work", async ({ page }) => {
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  const name = uniqueName("html");
  vmId = (await api.vm.create.mutate({ name, imageId: tiny!.id, cpus: 1, memoryMiB: 128 })).id;
  const errors: string[] = [];
  page.on("console", (message) => void (message.type() === "error" && errors.push(message.text())));
  page.on("pageerror", (error) => errors.push(error.message));

  const html = await (await page.request.get("/", { headers: { "sec-fetch-dest": "document" } })).text();
  expect(html).toContain(`data-vm-name="${name}"`);

  // The page's scripts are held back: what shows meanwhile is the server's HTML alone.
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.route("**/_next/static/chunks/*.js", async (route) => {
    await released;
    await route.continue();
  });
  await page.goto("/", { waitUntil: "commit" });
  const row = page.locator(`[data-testid="vm-row"][data-vm-name="${name}"]`);
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped");
  await expect(row.getByRole("cell").filter({ hasText: "<1m" })).toBeVisible();
  const tick = row.getByRole("checkbox", { name: `Select ${name}` });
  await expect(tick).toBeDisabled();
  await expect(page.getByRole("button", { name: "New VM" })).toBeDisabled();

  release();
  await tick.check();
  await expect(page.getByRole("toolbar", { name: "Selected VMs" })).toContainText("1 VM selected");
  await expect(page.locator(".live-on")).toBeVisible();
  expect(errors).toEqual([]);
});
