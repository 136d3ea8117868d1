// Every page of the dashboard, reached through its navigation as a person clicks: each shows
// its heading, with no error in the browser's console and no failed request.
import { expect, test } from "@playwright/test";
import { api, removeVm, uniqueName } from "./hangar.ts";

let vmId = "";

test.beforeAll(async () => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  vmId = (await api.vm.create.mutate({ name: uniqueName("pages"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 256 })).id;
});
test.afterAll(async () => {
  await removeVm(vmId);
});

test("every page loads from the navigation with its heading, no console error and no failed request", async ({ page }) => {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
  });

  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
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
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Images", exact: true }).click();
  await page.getByRole("link", { name: "hangar-tiny", exact: true }).click();
  await expect(page.getByRole("heading", { name: "hangar-tiny", level: 1 })).toBeVisible();

  expect(problems).toEqual([]);

  // An address that is no page says so, in the dashboard's frame.
  const missing = await page.goto("/no-such-page");
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole("link", { name: "Hangar", exact: true })).toBeVisible();
});
