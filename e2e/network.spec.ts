/**
 * Port forwards from the VM page: a forward added while the VM runs answers at once on the
 * bound host port, and is gone once removed. The VM is a nat guest (the default).
 */
import { expect, test } from "@playwright/test";
import { api, attachSerialLog, expectNoQemu, removeVm, uniqueName } from "./hangar.ts";

let vmId: string | undefined;

test.afterEach(async ({}, testInfo) => {
  if (!vmId) return;
  if (testInfo.status !== testInfo.expectedStatus) await attachSerialLog(testInfo, vmId);
  await removeVm(vmId);
  await expectNoQemu(vmId);
});

test("a port forward added in the UI answers, and stops answering once removed", async ({ page }) => {
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  const vm = await api.vm.create.mutate({ name: uniqueName("fwd"), imageId: tiny!.id, cpus: 1, memoryMiB: 192 });
  vmId = vm.id;
  await api.vm.start.mutate({ id: vm.id });
  // A web server in the guest; exec waits for SSH within its timeout.
  const serve = ["sh", "-c", "mkdir -p /tmp/www && echo served by the guest > /tmp/www/index.html && httpd -p 8080 -h /tmp/www"];
  await expect(async () => expect((await api.vm.exec.mutate({ id: vm.id, command: serve, timeoutSec: 20 })).exitCode).toBe(0)).toPass({ timeout: 90_000 });

  await page.goto(`/vms/${vm.id}`);
  await expect(page.getByTestId("vm-network")).toHaveText("nat");
  const form = page.getByRole("form", { name: "Add a port forward" });
  await form.getByLabel("Guest port").fill("8080");
  await form.getByRole("button", { name: "Add forward" }).click();
  const row = page.locator('[data-testid="port-forwards"] tr[data-guest-port="8080"]');
  await expect(row.getByTestId("bound-port")).toHaveText(/^\d+$/);
  const bound = Number(await row.getByTestId("bound-port").textContent());
  expect(await (await fetch(`http://127.0.0.1:${bound}/`)).text()).toBe("served by the guest\n");

  await row.getByRole("button", { name: "Remove" }).click();
  await expect(row).toHaveCount(0);
  await expect(fetch(`http://127.0.0.1:${bound}/`)).rejects.toThrow();
});
