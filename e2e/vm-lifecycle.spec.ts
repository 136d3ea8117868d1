/**
 * A person manages a VM from the dashboard: create from hangar-tiny, start, look at its
 * page, stop, delete. Real server, real qemu. Nothing may be left running afterwards.
 */
import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { api, attachSerialLog, expectNoQemu, qemuPids, removeVm, uniqueName } from "./hangar.ts";

const STATE_CHANGE = { timeout: 60_000 };
/** A public key for the page's "Add my SSH keys" (its private half is not needed here). */
const LATER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSG2kZ7+0indab+8xrb/q4/RI19+wBj67zL43PuC4IT e2e@later";
const screenshots = process.env.HANGAR_E2E_SCREENSHOTS;

/** VMs created by the current test, by id: cleaned up whatever happens. */
let created: string[] = [];

test.beforeEach(() => {
  created = [];
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const id of created) await attachSerialLog(testInfo, id);
  }
  for (const id of created) {
    await removeVm(id);
    await expectNoQemu(id);
  }
});

function vmRow(page: Page, name: string) {
  return page.locator(`[data-testid="vm-row"][data-vm-name="${name}"]`);
}

async function shot(page: Page, name: string) {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

test("create, start, inspect, stop and delete a VM", async ({ page }) => {
  const name = uniqueName();
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();

  // Create in the New VM dialog from the built-in image, which the form picks by default.
  await page.getByRole("button", { name: "New VM" }).click();
  const dialog = page.getByRole("dialog", { name: "New VM" });
  await expect(dialog.getByLabel("Name", { exact: true })).toBeFocused();
  await dialog.getByLabel("Name", { exact: true }).fill(name);
  const tiny = (await api.image.list.query()).find((image) => image.name === "hangar-tiny");
  expect(tiny?.status, "the built-in image hangar-tiny is registered").toBe("ready");
  await expect(dialog.getByLabel("Image", { exact: true })).toHaveValue(tiny!.id);
  await expect(dialog.getByLabel("CPUs", { exact: true })).toHaveValue("1");
  await expect(dialog.getByLabel("Memory (MiB)", { exact: true })).toHaveValue("256");
  // No host opens a bridge to VMs here (HANGAR_BRIDGES): the form says so rather than offer one.
  await expect(dialog.getByLabel("Network", { exact: true }).locator('option[value="bridge"]')).toBeDisabled();
  await expect(dialog.getByLabel("Network", { exact: true }).locator('option[value="bridge"]')).toHaveText("bridge: no host bridge is open to VMs");
  await dialog.getByRole("button", { name: "Create VM" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("status").filter({ hasText: `Created VM ${name}.` })).toBeVisible();

  const row = vmRow(page, name);
  await expect(row).toHaveCount(1, STATE_CHANGE);
  const id = await row.getAttribute("data-vm-id");
  expect(id).toBeTruthy();
  created.push(id!);
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped", STATE_CHANGE);
  await expect(row.getByRole("button", { name: "Delete", exact: true })).toBeVisible();

  // Start: the row turns Running (pushed by the live stream) with an SSH port, and offers Restart.
  await row.getByRole("button", { name: "Start", exact: true }).click();
  await expect(row.getByTestId("vm-state")).toHaveText("Running", STATE_CHANGE);
  await expect(row.getByTestId("vm-ssh-port")).toHaveText(/^\d{2,5}$/);
  await expect(row.getByRole("button", { name: "Start", exact: true })).toHaveCount(0);
  await expect(row.getByRole("button", { name: "Restart", exact: true })).toBeVisible();
  expect(qemuPids(id!).length).toBeGreaterThan(0);
  await shot(page, "dashboard");

  // Its page: properties, the ready condition, the SSH hint and the event history with the start.
  await row.getByRole("link", { name }).click();
  await expect(page).toHaveURL(new RegExp(`/vms/${id}$`));
  await expect(page.getByRole("heading", { name })).toBeVisible();
  await expect(page.getByTestId("vm-state")).toHaveText("Running");
  await expect(page.getByTestId("vm-ssh-port")).toHaveText(/^\d{2,5}$/);
  await expect(page.getByLabel("SSH command")).toHaveText(`hangar ssh ${name}`);
  // The ready condition: cloud-init's result (the tiny guest's stand-in), pushed live.
  await expect(page.getByTestId("vm-ready")).toContainText("Ready — cloud-init done", STATE_CHANGE);
  // The tiny guest's agent reports no addresses, and the page says why rather than nothing.
  await expect(page.getByTestId("vm-addresses")).toContainText("No guest agent reports them");
  await expect(page.getByTestId("event-list").getByRole("cell", { name: "start", exact: true })).toHaveCount(1, STATE_CHANGE);
  await shot(page, "vm-page");

  // A key added after the VM's first boot reaches it from its page (cloud-init gave it none).
  const key = await api.account.addSshKey.mutate({ publicKey: LATER_KEY, name: "e2e-later" });
  try {
    await page.reload();
    await page.getByRole("button", { name: "Add my SSH keys" }).click();
    await expect(page.getByRole("status").filter({ hasText: "your keys" })).toHaveText(/^Added 1 of your keys for user hangar\.$/, STATE_CHANGE);
    await expect(page.getByTestId("event-list").getByRole("cell", { name: "ssh-keys", exact: true })).toHaveCount(1);
  } finally {
    await api.account.removeSshKey.mutate({ id: key.id });
  }

  // Restart: a stop, then a start, each in the events; a new qemu runs it.
  const firstPids = qemuPids(id!);
  await page.getByRole("button", { name: "Restart", exact: true }).click();
  await expect(page.getByTestId("event-list").getByRole("cell", { name: "start", exact: true })).toHaveCount(2, STATE_CHANGE);
  await expect(page.getByTestId("event-list").getByRole("cell", { name: "stop", exact: true })).toHaveCount(1);
  await expect(page.getByTestId("vm-state")).toHaveText("Running");
  expect(qemuPids(id!)).not.toEqual(firstPids);

  // The disk grows while it runs; CPUs and memory wait for a stop.
  const disk = page.getByRole("form", { name: "Grow the disk" });
  const grownGiB = Number(await disk.getByLabel("New size (GiB)").inputValue());
  await disk.getByRole("button", { name: "Grow disk" }).click();
  await expect(page.getByTestId("event-list")).toContainText(`Disk grown to ${grownGiB} GiB while running`, STATE_CHANGE);
  await expect(page.getByRole("form", { name: "Change CPUs and memory" })).toHaveCount(0);

  // Back to the list: stop, then delete.
  await page.goBack();
  const again = vmRow(page, name);
  await expect(again.getByTestId("vm-state")).toHaveText("Running");
  await again.getByRole("button", { name: "Stop", exact: true }).click();
  await expect(again.getByTestId("vm-state")).toHaveText("Stopped", STATE_CHANGE);
  await expectNoQemu(id!);

  page.once("dialog", (dialog) => void dialog.accept());
  await again.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(again).toHaveCount(0, STATE_CHANGE);
  await expect(api.vm.get.query({ id: id! })).rejects.toThrow(/No VM with id/);
});

test("an invalid name is flagged in the form with the rule, a taken one gets the server's sentence, and nothing is created", async ({ page }) => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const taken = await api.vm.create.mutate({ name: uniqueName("e2e-taken"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 128 });
  created.push(taken.id);
  const before = (await api.vm.list.query()).items;
  await page.goto("/");
  await page.getByRole("button", { name: "New VM" }).click();
  const dialog = page.getByRole("dialog", { name: "New VM" });
  const name = dialog.getByLabel("Name", { exact: true });
  await name.fill("Bad_Name");
  await dialog.getByRole("button", { name: "Create VM" }).click();
  // The browser holds the form back and says the rule; nothing reaches the server.
  expect(await name.evaluate((input: HTMLInputElement) => input.validity.patternMismatch)).toBe(true);
  // Chromium shows the title under its own "Please match the requested format."
  await expect(name).toHaveAttribute("title", /^A DNS label: 1 to 63 lowercase letters, digits and hyphens/);

  // The dialog stays open with the server's sentence; Escape closes it.
  await name.fill(taken.name);
  await dialog.getByRole("button", { name: "Create VM" }).click();
  const alert = dialog.getByRole("form", { name: "New VM" }).getByRole("alert");
  await expect(alert).toContainText(`A VM named "${taken.name}" already exists`);
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("button", { name: "New VM" })).toBeFocused();
  const after = (await api.vm.list.query()).items;
  expect(after.map((vm) => vm.name)).not.toContain("Bad_Name");
  expect(after).toHaveLength(before.length);
  created.push(...after.filter((vm) => !before.some((b) => b.id === vm.id)).map((vm) => vm.id));
});

test("a stopped VM's CPUs and memory change on its page for its next start, it can be marked to start at boot, renamed and made into an image", async ({
  page,
}) => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-resize"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 128 });
  created.push(vm.id);
  await page.goto(`/vms/${vm.id}`);
  const form = page.getByRole("form", { name: "Change CPUs and memory" });
  await expect(form.getByLabel("CPUs", { exact: true })).toHaveValue("1");
  await form.getByLabel("CPUs", { exact: true }).fill("2");
  await form.getByLabel("Memory (MiB)", { exact: true }).fill("512");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("event-list").getByRole("cell", { name: "resize", exact: true })).toHaveCount(1, STATE_CHANGE);
  await expect(page.getByTestId("event-list")).toContainText("CPUs 1 → 2, memory 128 → 512 MiB; in effect from the next start");
  await expect(form.getByLabel("Memory (MiB)", { exact: true })).toHaveValue("512");
  await shot(page, "vm-resize");
  expect(await api.vm.get.query({ id: vm.id })).toMatchObject({ cpus: 2, memoryMiB: 512, autostart: false });

  // Start at boot: a checkbox among its properties that saves as it changes.
  const atBoot = page.getByTestId("vm-autostart").getByLabel("Start when its host boots");
  await atBoot.check();
  await expect(page.getByTestId("event-list")).toContainText("Starts when its host boots");
  await expect(atBoot).toBeChecked();
  expect((await api.vm.get.query({ id: vm.id })).autostart).toBe(true);
  // Its place in the start order, and how long the next VM waits for it.
  const startOrder = page.getByRole("form", { name: "Start order" });
  await startOrder.getByLabel("Order").fill("2");
  await startOrder.getByLabel("Then wait (s)").fill("15");
  await startOrder.getByRole("button", { name: "Save order" }).click();
  await expect(page.getByTestId("event-list")).toContainText("Starts when its host boots (order 2, then 15 s before the next)");
  expect(await api.vm.get.query({ id: vm.id })).toMatchObject({ autostartOrder: 2, autostartDelaySec: 15 });

  // Protection: no Delete while it is on, and the server refuses one sent anyway.
  const protect = page.getByTestId("vm-protection").getByLabel("Protect it from deletion");
  await protect.check();
  await expect(page.getByTestId("event-list")).toContainText("Protected from deletion");
  await expect(page.getByRole("button", { name: "Delete", exact: true })).toHaveCount(0);
  await expect(api.vm.delete.mutate({ id: vm.id })).rejects.toThrow(/is protected from deletion/);
  await protect.uncheck();
  await expect(page.getByRole("button", { name: "Delete", exact: true })).toBeVisible();

  // A new name: the heading follows, and the event says what it was.
  const renamed = `${vm.name}-b`;
  const rename = page.getByRole("form", { name: "Rename" });
  await rename.getByLabel("New name").fill(renamed);
  await rename.getByRole("button", { name: "Rename" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText(renamed);
  await expect(page.getByTestId("event-list")).toContainText(`Renamed from ${vm.name}`);

  // What it is for: among its properties once saved, with its line breaks.
  const about = page.getByRole("form", { name: "Description" });
  await about.getByLabel("Description").fill("Build box\nfor the <b>web</b> team");
  await about.getByRole("button", { name: "Save description" }).click();
  await expect(page.getByTestId("vm-description")).toHaveText("Build box\nfor the <b>web</b> team");

  // An image of its disk, for an admin: ready on the Images page at once.
  const publish = page.getByRole("form", { name: "Make an image" });
  await expect(publish.getByLabel("Image name")).toHaveValue(`${renamed}-image`);
  await publish.getByRole("button", { name: "Make image" }).click();
  await expect(publish.getByRole("status")).toHaveText(`Image ${renamed}-image is ready.`, STATE_CHANGE);
  const made = (await api.image.list.query()).find((i) => i.name === `${renamed}-image`);
  expect(made?.status).toBe("ready");
  await api.image.delete.mutate({ id: made!.id });
});

test("a double-click on Take snapshot, Add forward or Clone sends it once, and shows no refusal of the second click", async ({ page }) => {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-dbl"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 128 });
  created.push(vm.id);
  // The procedures the page calls, one entry per call (calls of one tick share a request).
  const sent: string[] = [];
  page.on("request", (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.startsWith("/api/trpc/")) sent.push(...pathname.slice("/api/trpc/".length).split(","));
  });
  const times = (procedure: string) => sent.filter((name) => name === procedure).length;
  // The page's own alerts, not the route announcer's: where a refused second click shows.
  const alerts = page.getByRole("main").getByRole("alert");
  await page.goto(`/vms/${vm.id}`);
  await expect(page.getByRole("heading", { name: vm.name })).toBeVisible();

  const snapshotForm = page.getByRole("form", { name: "New snapshot" });
  await snapshotForm.getByLabel("Snapshot name").fill("once");
  await snapshotForm.getByRole("button", { name: "Take snapshot" }).dblclick();
  await expect(page.getByTestId("snapshot-list").getByRole("cell", { name: "once", exact: true })).toHaveCount(1, STATE_CHANGE);
  await expect(snapshotForm.getByLabel("Snapshot name")).toHaveValue("");
  expect(times("snapshot.create")).toBe(1);
  await expect(alerts).toHaveCount(0);

  const forwardForm = page.getByRole("form", { name: "Add a port forward" });
  await forwardForm.getByLabel("Guest port").fill("8080");
  await forwardForm.getByRole("button", { name: "Add forward" }).dblclick();
  await expect(page.getByTestId("port-forwards").getByRole("cell", { name: "8080", exact: true })).toHaveCount(1, STATE_CHANGE);
  expect(times("vm.addForward")).toBe(1);
  await expect(alerts).toHaveCount(0);

  const cloneName = uniqueName("e2e-dbl-clone");
  await page.getByLabel("Clone name").fill(cloneName);
  await page.getByRole("button", { name: "Clone" }).dblclick();
  await expect(page.getByRole("heading", { name: cloneName })).toBeVisible(STATE_CHANGE);
  const clones = (await api.vm.list.query({ search: cloneName })).items;
  created.push(...clones.map((clone) => clone.id));
  expect(clones).toHaveLength(1);
  expect(times("vm.clone")).toBe(1);
});
