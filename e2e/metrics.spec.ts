/**
 * The VM page's usage graphs are live: with the VM running, the CPU graph receives new
 * points from the sampler without a reload. The Hosts page shows this host online.
 */
import { expect, test } from "@playwright/test";
import { api, expectNoQemu, removeVm, uniqueName } from "./hangar.ts";

let created: string[] = [];
test.afterEach(async () => {
  for (const id of created) {
    await removeVm(id);
    await expectNoQemu(id);
  }
  created = [];
});

test("the VM page's graphs receive new points", async ({ page }) => {
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  expect(tiny, "the built-in image hangar-tiny is registered").toBeTruthy();
  const vm = await api.vm.create.mutate({ name: uniqueName("graphs"), imageId: tiny!.id, cpus: 1, memoryMiB: 256 });
  created.push(vm.id);
  await api.vm.start.mutate({ id: vm.id });

  await page.goto(`/vms/${vm.id}`);
  const cpu = page.getByTestId("graph-cpu");
  await expect(cpu).toBeVisible();
  const points = async () => Number(await cpu.getAttribute("data-points"));
  // Two samples apart: the first point only starts the CPU arithmetic.
  await expect.poll(points, { timeout: 30_000 }).toBeGreaterThan(0);
  const before = await points();
  await expect.poll(points, { timeout: 30_000 }).toBeGreaterThan(before);
  await expect(cpu.locator("canvas")).toHaveCount(1);

  await page.goto("/hosts");
  const host = page.getByTestId("host-card").first();
  await expect(host.getByTestId("host-status")).toHaveText("online");
  await expect(host.getByRole("meter", { name: "Memory" })).toBeVisible();
});
