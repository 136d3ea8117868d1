import { expect, test } from "@playwright/test";
import { api, removeVm, uniqueName } from "./hangar.ts";

const LONG = { timeout: 60_000 };
let vmId = "";

test.beforeAll(async () => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-display"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 256 });
  vmId = vm.id;
  await api.vm.start.mutate({ id: vm.id });
});
test.afterAll(async () => {
  await removeVm(vmId);
});

test("the Display tab shows the VM's screen, and closing the tab closes its display", async ({ page }) => {
  await page.goto(`/vms/${vmId}`);
  await page.getByRole("tab", { name: "Display" }).click();
  const display = page.getByTestId("display");
  await expect(display).toHaveAttribute("data-phase", "connected", LONG);
  expect((await api.terminal.sessions.query()).display).toBe(1);
  // The firmware writes its banner on the VGA screen: the canvas shows more than one colour.
  const colours = () =>
    display.locator("canvas").evaluate((canvas: HTMLCanvasElement) => {
      const context = canvas.getContext("2d");
      if (!context || canvas.width === 0 || canvas.height === 0) return 0;
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      const seen = new Set<number>();
      for (let i = 0; i < data.length; i += 4) seen.add(((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0));
      return seen.size;
    });
  await expect.poll(colours, LONG).toBeGreaterThan(1);
  // Once it booted, the guest's login prompt is on the screen too (a getty on tty1): keys
  // typed on the display log in there and run a command.
  await api.vm.wait.query({ id: vmId, for: "ready", timeoutSec: 120 });
  await display.locator("canvas").click();
  await expect(async () => {
    await page.keyboard.type("root\n");
    await page.waitForTimeout(1500);
    await page.keyboard.type("touch /tmp/typed-on-the-screen\n");
    const made = await api.vm.exec.mutate({ id: vmId, command: ["test", "-f", "/tmp/typed-on-the-screen"] });
    expect(made.exitCode).toBe(0);
  }).toPass(LONG);
  await page.close();
  await expect.poll(async () => (await api.terminal.sessions.query()).display, LONG).toBe(0);
});
