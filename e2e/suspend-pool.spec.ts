/**
 * Suspend and resume from the inventory, snapshots on the VM page, and a warm pool from
 * creation to deletion, all through the dashboard. Real server, real qemu (under TCG a
 * boot to SSH takes seconds, so the waits are generous). Nothing may be left running.
 */
import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { ADMIN, api, attachSerialLog, expectNoQemu, qemuPids, removeVm, uniqueName } from "./hangar.ts";

const STATE_CHANGE = { timeout: 60_000 };
const ACQUIRE = { timeout: 150_000 };
const screenshots = process.env.HANGAR_E2E_SCREENSHOTS;

/** VMs and pools made by the current test: cleaned up whatever happens. */
let created: string[] = [];
let pools: string[] = [];

test.beforeEach(() => {
  created = [];
  pools = [];
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const id of created) await attachSerialLog(testInfo, id);
  }
  for (const name of pools) {
    const pool = (await api.pool.list.query()).find((p) => p.name === name);
    if (pool) await api.pool.delete.mutate({ id: pool.id });
  }
  for (const id of created) {
    await removeVm(id);
    await expectNoQemu(id);
  }
});

async function tinyImageId(): Promise<string> {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("the built-in image hangar-tiny is missing");
  return image.id;
}

async function shot(page: Page, name: string) {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

function vmRow(page: Page, name: string) {
  return page.locator(`[data-testid="vm-row"][data-vm-name="${name}"]`);
}

test("suspend a running VM and resume it from the inventory, then stop and delete it", async ({ page }) => {
  const name = uniqueName("e2e-s");
  await page.goto("/");
  await page.getByRole("button", { name: "New VM" }).click();
  const form = page.getByRole("dialog", { name: "New VM" });
  await form.getByLabel("Name", { exact: true }).fill(name);
  await form.getByRole("button", { name: "Create VM" }).click();
  await expect(form).toBeHidden();

  const row = vmRow(page, name);
  await expect(row).toHaveCount(1, STATE_CHANGE);
  const id = (await row.getAttribute("data-vm-id")) ?? "";
  expect(id).not.toBe("");
  created.push(id);
  const state = row.getByTestId("vm-state");
  await expect(state).toHaveText("Stopped", STATE_CHANGE);
  await expect(row.getByRole("button", { name: "Suspend", exact: true })).toHaveCount(0);

  await row.getByRole("button", { name: "Start", exact: true }).click();
  await expect(state).toHaveText("Running", STATE_CHANGE);
  await expect(row.getByRole("button", { name: "Resume", exact: true })).toHaveCount(0);

  await shot(page, "inventory-running");
  await row.getByRole("button", { name: "Suspend", exact: true }).click();
  await expect(state).toHaveText("Suspended", STATE_CHANGE);
  await shot(page, "inventory-suspended");
  await expectNoQemu(id); // suspended = saved to disk, qemu gone
  await expect(row.getByRole("button", { name: "Start", exact: true })).toHaveCount(0);

  await row.getByRole("button", { name: "Resume", exact: true }).click();
  await expect(state).toHaveText("Running", STATE_CHANGE);
  expect(qemuPids(id)).toHaveLength(1);

  await row.getByRole("button", { name: "Stop", exact: true }).click();
  await expect(state).toHaveText("Stopped", STATE_CHANGE);
  await expectNoQemu(id);

  page.once("dialog", (dialog) => void dialog.accept());
  await row.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(row).toHaveCount(0, STATE_CHANGE);
  await expect(api.vm.get.query({ id })).rejects.toThrow(/No VM with id/);
});

test("take a snapshot of a stopped VM on its page, see it listed, delete it", async ({ page }) => {
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-snap"), imageId: await tinyImageId(), cpus: 1, memoryMiB: 256 });
  created.push(vm.id);
  await expect.poll(async () => (await api.vm.get.query({ id: vm.id })).state, STATE_CHANGE).toBe("Stopped");
  await page.goto(`/vms/${vm.id}`);
  await expect(page.getByTestId("vm-state")).toHaveText("Stopped");

  const section = page.getByRole("region", { name: "Snapshots" });
  await expect(section.getByText("No snapshots.")).toBeVisible();
  await section.getByLabel("Snapshot name").fill("first");
  await section.getByRole("button", { name: "Take snapshot" }).click();
  const snapshot = section.locator('[data-testid="snapshot-row"][data-snapshot-name="first"]');
  await expect(snapshot).toHaveCount(1, STATE_CHANGE);
  await expect(snapshot.getByRole("cell").nth(1)).toHaveText("no"); // taken while stopped: disk only
  await expect(section.getByLabel("Snapshot name")).toHaveValue("");
  expect((await api.snapshot.list.query({ id: vm.id })).map((s) => s.name)).toEqual(["first"]);
  await shot(page, "vm-snapshots");

  // The same name again: the server's sentence, inline.
  await section.getByLabel("Snapshot name").fill("first");
  await section.getByRole("button", { name: "Take snapshot" }).click();
  await expect(section.getByRole("alert")).toContainText('already has a snapshot named "first"');

  page.once("dialog", (dialog) => void dialog.accept());
  await snapshot.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(snapshot).toHaveCount(0, STATE_CHANGE);
  expect(await api.snapshot.list.query({ id: vm.id })).toEqual([]);

  // Clone it (Stopped): the new VM's page opens.
  const cloneName = uniqueName("e2e-clone");
  const clone = page.getByRole("region", { name: "Clone" });
  await clone.getByLabel("Clone name").fill(cloneName);
  await clone.getByRole("button", { name: "Clone", exact: true }).click();
  await expect(page.getByRole("heading", { name: cloneName })).toBeVisible(STATE_CHANGE);
  const cloneId = new URL(page.url()).pathname.replace(/^\/vms\//, "");
  expect(cloneId).not.toBe(vm.id);
  created.push(cloneId);
  await expect(page.getByTestId("vm-state")).toHaveText("Stopped", STATE_CHANGE);
});

test("a pool fills, hands out a member, takes it back, and goes away with its VMs", async ({ page }) => {
  const name = uniqueName("e2e-p");
  pools.push(name);
  await page.goto("/pools");
  await expect(page.getByRole("heading", { name: "Warm pools" })).toBeVisible();
  await expect(page.getByLabel("Image", { exact: true })).toHaveValue(await tinyImageId());
  await expect(page.getByLabel("Staging state")).toHaveValue("Suspended");
  await page.getByLabel("Pool name").fill(name);
  await page.getByLabel("Pool size").fill("1");
  await page.getByLabel("Staging state").selectOption("Stopped");
  await page.getByRole("button", { name: "Create pool" }).click();

  const pool = page.locator(`[data-testid="pool"][data-pool-name="${name}"]`);
  await expect(pool).toHaveCount(1, STATE_CHANGE);
  await shot(page, "pools-new");
  await expect(pool.getByTestId("pool-staging")).toHaveText("Stopped");
  const member = pool.getByTestId("pool-member");
  await expect(member).toHaveCount(1, STATE_CHANGE);
  await expect(member.getByTestId("vm-state")).toHaveText("Stopped", STATE_CHANGE);
  await expect(pool.getByTestId("pool-ready")).toContainText("1 of 1", STATE_CHANGE);
  await expect(pool.locator("progress")).toHaveCount(0);
  const poolId = (await api.pool.list.query()).find((p) => p.name === name)?.id ?? "";
  const seen = new Set<string>();
  const remember = async () => {
    for (const vm of (await api.vm.list.query()).items.filter((v) => v.poolId === poolId)) seen.add(vm.id);
  };
  await remember();

  // Acquire boots the Stopped member and hands it out once it is ready again. A double-click
  // asks once: a second call would hand out the replacement too, to a page that shows one.
  let acquires = 0;
  page.on("request", (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.startsWith("/api/trpc/")) acquires += pathname.split(",").filter((call) => call.endsWith("pool.acquire")).length;
  });
  await pool.getByRole("button", { name: "Acquire" }).dblclick();
  const acquired = pool.getByTestId("acquired");
  await expect(acquired.getByLabel("Straight to its forwarded SSH port")).toContainText(/^ssh -p \d+ -i \S+\.key hangar@127\.0\.0\.1$/, ACQUIRE);
  await expect(acquired.getByLabel("Through Hangar, with that key")).toHaveText(/^hangar ssh -i \S+\.key \S+$/);
  await expect(acquired.locator("details summary")).toHaveText("Private key");
  const href = (await acquired.getByRole("link").getAttribute("href")) ?? "";
  const acquiredId = href.replace(/^\/vms\//, "");
  expect(acquiredId).not.toBe("");
  seen.add(acquiredId);
  const acquiredRow = pool.locator(`[data-testid="pool-member"][data-vm-id="${acquiredId}"]`);
  await expect(acquiredRow).toContainText(ADMIN.email);
  await expect(acquiredRow.getByTestId("vm-state")).toHaveText("Running");
  expect(qemuPids(acquiredId)).toHaveLength(1);
  expect(acquires).toBe(1);
  await shot(page, "pools");
  await remember(); // the replacement the pool started at once

  page.once("dialog", (dialog) => void dialog.accept());
  await acquiredRow.getByRole("button", { name: "Release" }).click();
  await expect(acquiredRow).toHaveCount(0, STATE_CHANGE);
  await expect(acquired).toHaveCount(0);
  await expectNoQemu(acquiredId);
  await remember();

  page.once("dialog", (dialog) => void dialog.accept());
  await pool.getByRole("button", { name: "Delete pool" }).click();
  await expect(pool).toHaveCount(0, { timeout: 120_000 });
  pools = [];
  expect((await api.pool.list.query()).map((p) => p.name)).not.toContain(name);
  const left = (await api.vm.list.query()).items.filter((vm) => vm.poolId === poolId || vm.name.startsWith(`${name}-`));
  expect(left).toEqual([]);
  expect(seen.size).toBeGreaterThanOrEqual(2);
  for (const id of seen) await expectNoQemu(id);
});
