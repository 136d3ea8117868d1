import { expect, test } from "@playwright/test";
import { api, qemuPids, removeVm, uniqueName } from "./hangar.ts";

const STATE_CHANGE = { timeout: 60_000 };
const created: string[] = [];
test.afterEach(async () => {
  for (const id of created.splice(0)) await removeVm(id);
});

async function tinyImageId(): Promise<string> {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("the built-in image is missing");
  return image.id;
}

test("suspend and resume a VM, and snapshot it while stopped", async ({ page }) => {
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-s"), imageId: await tinyImageId(), cpus: 1, memoryMiB: 256 });
  created.push(vm.id);
  await page.goto(`/vms/${vm.id}`);
  const state = page.getByTestId("vm-state");

  await page.getByRole("button", { name: "Take snapshot" }).waitFor();
  await page.getByLabel("Snapshot name").fill("first");
  await page.getByRole("button", { name: "Take snapshot" }).click();
  const snapshot = page.getByTestId("snapshot-row").filter({ hasText: "first" });
  await expect(snapshot).toHaveCount(1, STATE_CHANGE);
  page.once("dialog", (dialog) => void dialog.accept());
  await snapshot.getByRole("button", { name: "Delete" }).click();
  await expect(snapshot).toHaveCount(0, STATE_CHANGE);

  await page.getByRole("button", { name: "Start", exact: true }).click();
  await expect(state).toHaveText("Running", STATE_CHANGE);
  await page.getByRole("button", { name: "Suspend", exact: true }).click();
  await expect(state).toHaveText("Suspended", STATE_CHANGE);
  expect(qemuPids(vm.id)).toEqual([]);
  await page.getByRole("button", { name: "Resume", exact: true }).click();
  await expect(state).toHaveText("Running", STATE_CHANGE);
  expect(qemuPids(vm.id).length).toBe(1);
  await page.getByRole("button", { name: "Stop", exact: true }).click();
  await expect(state).toHaveText("Stopped", STATE_CHANGE);
});

test("a pool fills, hands out a member, takes it back, and goes away with its VMs", async ({ page }) => {
  const name = uniqueName("e2e-p");
  await page.goto("/pools");
  await page.getByLabel("Pool name").fill(name);
  await page.getByLabel("Pool size").fill("1");
  await page.getByLabel("Staging state").selectOption("Stopped");
  await page.getByRole("button", { name: "Create pool" }).click();

  const pool = page.locator(`[data-testid="pool"][data-pool-name="${name}"]`);
  const member = pool.getByTestId("pool-member");
  await expect(member.getByTestId("vm-state")).toHaveText("Stopped", STATE_CHANGE);
  await pool.getByRole("button", { name: "Acquire" }).click();
  await expect(pool.getByTestId("acquired").getByLabel("SSH command")).toContainText("ssh -p ", STATE_CHANGE);
  const acquiredId = await member.filter({ hasText: "admin@e2e.hangar" }).getAttribute("data-vm-id");
  expect(acquiredId).toBeTruthy();
  await member.filter({ hasText: "admin@e2e.hangar" }).getByRole("button", { name: "Release" }).click();
  await expect(pool.locator(`[data-vm-id="${acquiredId}"]`)).toHaveCount(0, STATE_CHANGE);
  expect(qemuPids(acquiredId!)).toEqual([]);

  page.once("dialog", (dialog) => void dialog.accept());
  await pool.getByRole("button", { name: "Delete pool" }).click();
  await expect(pool).toHaveCount(0, STATE_CHANGE);
  const left = (await api.vm.list.query()).filter((vm) => vm.name.startsWith(`${name}-`));
  expect(left).toEqual([]);
});
