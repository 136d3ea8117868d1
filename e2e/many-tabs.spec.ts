/**
 * Many tabs of one browser: each holds its live updates on the tab's WebSocket, not on one
 * of the six HTTP connections a browser allows a host, so eight tabs all show a change and
 * a ninth still loads.
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
