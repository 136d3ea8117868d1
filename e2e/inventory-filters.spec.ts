/**
 * The inventory table narrowed by a search and by filters, sorted by a column, and kept
 * narrowed while live changes arrive; an operator starts on their own VMs.
 */
import { expect, test, type Page } from "@playwright/test";
import { api, clientFor, removeVm, uniqueName } from "./hangar.ts";

const LONG = { timeout: 60_000 };
const created: string[] = [];

test.afterEach(async () => {
  for (const id of created.splice(0)) await removeVm(id);
});

async function tinyImageId(): Promise<string> {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("the built-in image is missing");
  return image.id;
}

async function addOperator() {
  const credentials = { email: `${uniqueName("operator")}@e2e.hangar`, password: "a good long password" };
  await api.user.add.mutate({ ...credentials, name: "operator", role: "operator" });
  return credentials;
}

const names = (page: Page) => page.getByTestId("vm-row").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-vm-name")));

test("search and filters narrow the table, a column sorts it, and live changes keep to the filter", async ({ page }) => {
  const imageId = await tinyImageId();
  const prefix = uniqueName("flt");
  const spec = { imageId, cpus: 1, memoryMiB: 128 };
  const alpha = await api.vm.create.mutate({ name: `${prefix}-alpha`, ...spec });
  created.push(alpha.id);
  const beta = await api.vm.create.mutate({ name: `${prefix}-beta`, ...spec });
  created.push(beta.id);
  const operator = await addOperator();
  const gamma = await (await clientFor(operator)).vm.create.mutate({ name: `${prefix}-gamma`, ...spec });
  created.push(gamma.id);
  await api.vm.start.mutate({ id: beta.id });

  await page.goto("/");
  const search = page.getByLabel("Search VMs by name");
  await search.fill(prefix);
  await expect.poll(() => names(page)).toEqual([`${prefix}-gamma`, `${prefix}-beta`, `${prefix}-alpha`]);
  await expect(page.getByTestId("vm-count")).toHaveText("3 VMs");

  await search.fill(`${prefix}-alp`);
  await expect.poll(() => names(page)).toEqual([`${prefix}-alpha`]);
  await search.fill(prefix);

  await page.getByLabel("Filter by state").selectOption("Running");
  await expect.poll(() => names(page)).toEqual([`${prefix}-beta`]);
  await page.getByLabel("Filter by state").selectOption("");

  await page.getByLabel("Filter by owner").selectOption("mine");
  await expect.poll(() => names(page)).toEqual([`${prefix}-beta`, `${prefix}-alpha`]);
  await page.getByLabel("Filter by owner").selectOption({ label: operator.email });
  await expect.poll(() => names(page)).toEqual([`${prefix}-gamma`]);
  await page.getByLabel("Filter by owner").selectOption("all");

  // A VM created meanwhile shows (first, as the newest) if it matches the search, and not otherwise.
  const other = await api.vm.create.mutate({ name: uniqueName("nomatch"), ...spec });
  created.push(other.id);
  const delta = await api.vm.create.mutate({ name: `${prefix}-delta`, ...spec });
  created.push(delta.id);
  await expect.poll(() => names(page)).toEqual([`${prefix}-delta`, `${prefix}-gamma`, `${prefix}-beta`, `${prefix}-alpha`]);

  // Sorted by name, then the other way round.
  const nameHeader = page.getByRole("columnheader", { name: "Name" });
  await nameHeader.getByRole("button").click();
  await expect(nameHeader).toHaveAttribute("aria-sort", "ascending");
  await expect.poll(() => names(page)).toEqual([`${prefix}-alpha`, `${prefix}-beta`, `${prefix}-delta`, `${prefix}-gamma`]);
  await nameHeader.getByRole("button").click();
  await expect(nameHeader).toHaveAttribute("aria-sort", "descending");
  await expect.poll(() => names(page)).toEqual([`${prefix}-gamma`, `${prefix}-delta`, `${prefix}-beta`, `${prefix}-alpha`]);

  // Filtered to Running, a VM that stops leaves the table.
  await page.getByLabel("Filter by state").selectOption("Running");
  await expect.poll(() => names(page)).toEqual([`${prefix}-beta`]);
  await api.vm.stop.mutate({ id: beta.id, timeoutSec: 0 });
  await expect.poll(() => names(page), LONG).toEqual([]);
  await expect(page.getByText("No VM matches the search and filters.")).toBeVisible();
});

test("an operator's table starts on their own VMs", async ({ browser }) => {
  const imageId = await tinyImageId();
  const prefix = uniqueName("mine");
  const theirs = await api.vm.create.mutate({ name: `${prefix}-admin`, imageId, cpus: 1, memoryMiB: 128 });
  created.push(theirs.id);
  const operator = await addOperator();
  const own = await (await clientFor(operator)).vm.create.mutate({ name: `${prefix}-own`, imageId, cpus: 1, memoryMiB: 128 });
  created.push(own.id);

  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const page = await context.newPage();
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(operator.email);
  await page.getByLabel("Password").fill(operator.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByLabel("Filter by owner")).toHaveValue("mine");
  await page.getByLabel("Search VMs by name").fill(prefix);
  await expect.poll(() => names(page)).toEqual([`${prefix}-own`]);
  await page.getByLabel("Filter by owner").selectOption("all");
  await expect.poll(() => names(page)).toEqual([`${prefix}-own`, `${prefix}-admin`]);
  await context.close();
});

test("VMs selected in the table are deleted together, each only once, and the selection clears", async ({ page }) => {
  const imageId = await tinyImageId();
  const prefix = uniqueName("bulk");
  const spec = { imageId, cpus: 1, memoryMiB: 128 };
  for (const suffix of ["alpha", "beta", "gamma"]) created.push((await api.vm.create.mutate({ name: `${prefix}-${suffix}`, ...spec })).id);

  await page.goto("/");
  await page.getByLabel("Search VMs by name").fill(prefix);
  await expect.poll(() => names(page)).toEqual([`${prefix}-gamma`, `${prefix}-beta`, `${prefix}-alpha`]);
  const bar = page.getByRole("toolbar", { name: "Selected VMs" });
  const search = page.getByLabel("Search VMs by name");
  const count = page.getByTestId("vm-count");
  // A search keeps the ticks of VMs it still lists, and drops the others for good.
  await page.getByLabel(`Select ${prefix}-alpha`).check();
  await search.fill(`${prefix}-al`);
  await expect(count).toHaveText("1 VM");
  await expect(bar).toContainText("1 VM selected");
  await search.fill(`${prefix}-be`);
  await expect(count).toHaveText("1 VM");
  await expect(bar).toHaveCount(0);
  await search.fill(prefix);
  await expect(count).toHaveText("3 VMs");
  await expect(bar).toHaveCount(0);

  await page.getByLabel(`Select ${prefix}-alpha`).check();
  await page.getByLabel(`Select ${prefix}-beta`).check();
  await expect(bar).toContainText("2 VMs selected");
  // Stopped VMs start but do not stop or restart.
  await expect(bar.getByRole("button", { name: "Start (2)" })).toBeEnabled();
  await expect(bar.getByRole("button", { name: "Stop", exact: true })).toBeDisabled();
  await expect(bar.getByRole("button", { name: "Restart", exact: true })).toBeDisabled();

  page.once("dialog", (dialog) => void dialog.accept());
  await bar.getByRole("button", { name: "Delete (2)" }).click();
  await expect(bar).toHaveCount(0, LONG);
  await expect.poll(() => names(page), LONG).toEqual([`${prefix}-gamma`]);
  expect((await api.vm.list.query({ search: prefix })).items.map((vm) => vm.name)).toEqual([`${prefix}-gamma`]);

  await page.getByLabel("Select every VM listed").check();
  await expect(bar).toContainText("1 VM selected");
  await bar.getByRole("button", { name: "Clear selection" }).click();
  await expect(bar).toHaveCount(0);
});

test("tags set on a VM's page show in the table, a tag lists its VMs, and a VM tagged meanwhile joins the list", async ({ page }) => {
  const imageId = await tinyImageId();
  const prefix = uniqueName("tag");
  const tag = `${prefix}-web`;
  const spec = { imageId, cpus: 1, memoryMiB: 128 };
  const web = await api.vm.create.mutate({ name: `${prefix}-one`, ...spec });
  created.push(web.id);
  const other = await api.vm.create.mutate({ name: `${prefix}-two`, ...spec, tags: ["db"] });
  created.push(other.id);

  await page.goto(`/vms/${web.id}`);
  const form = page.getByRole("form", { name: "Tags" });
  await form.getByLabel("Tags").fill(`${tag.toUpperCase()}, ci`);
  await form.getByRole("button", { name: "Save tags" }).click();
  await expect(page.getByTestId("event-list")).toContainText(`Tags: ci, ${tag}`, LONG);
  await expect(form.getByLabel("Tags")).toHaveValue(`ci ${tag}`);
  await form.getByLabel("Tags").fill("not/a-tag");
  await form.getByRole("button", { name: "Save tags" }).click();
  await expect(form.getByRole("alert")).toContainText("One of those is not a tag");

  await page.goto("/");
  await page.getByLabel("Search VMs by name").fill(prefix);
  await expect.poll(() => names(page)).toEqual([`${prefix}-two`, `${prefix}-one`]);
  // A click on a row's tag lists the VMs with it.
  await page.locator(`[data-testid="vm-row"][data-vm-name="${prefix}-one"]`).getByRole("button", { name: tag }).click();
  await expect(page.getByLabel("Filter by tag")).toHaveValue(tag);
  await expect.poll(() => names(page)).toEqual([`${prefix}-one`]);
  await api.vm.setTags.mutate({ id: other.id, tags: ["db", tag] });
  await expect.poll(() => names(page), LONG).toEqual([`${prefix}-two`, `${prefix}-one`]);
  await api.vm.setTags.mutate({ id: web.id, tags: [] });
  await expect.poll(() => names(page), LONG).toEqual([`${prefix}-two`]);
  await page.getByLabel("Filter by tag").selectOption("");
  await expect.poll(() => names(page)).toEqual([`${prefix}-two`, `${prefix}-one`]);
});

test("every VM that matches, on pages not loaded too, can be selected and deleted together", async ({ page }) => {
  test.setTimeout(180_000);
  const imageId = await tinyImageId();
  const prefix = uniqueName("many");
  // One more than a page of the table (PAGE_SIZE, 100).
  const made = await Promise.all(
    Array.from({ length: 101 }, (_, i) => api.vm.create.mutate({ name: `${prefix}-${String(i).padStart(3, "0")}`, imageId, cpus: 1, memoryMiB: 64 })),
  );
  created.push(...made.map((vm) => vm.id));

  await page.goto("/");
  await page.getByLabel("Search VMs by name").fill(prefix);
  await expect(page.getByTestId("vm-count")).toHaveText("101 VMs", LONG);
  await page.getByLabel("Select every VM listed").check();
  const bar = page.getByRole("toolbar", { name: "Selected VMs" });
  await expect(bar).toContainText("100 VMs selected");
  await bar.getByRole("button", { name: "Select all 101 VMs that match" }).click();
  await expect(bar).toContainText("101 VMs selected");
  page.once("dialog", (dialog) => void dialog.accept());
  await bar.getByRole("button", { name: "Delete (101)" }).click();
  await expect(page.getByTestId("vm-count")).toHaveText("0 VMs", { timeout: 120_000 });
  expect((await api.vm.list.query({ search: prefix })).total).toBe(0);
});

test("a table sorted by name puts a VM created or renamed meanwhile in its place", async ({ page }) => {
  const imageId = await tinyImageId();
  const prefix = uniqueName("ord");
  const spec = { imageId, cpus: 1, memoryMiB: 128 };
  for (const suffix of ["b", "d"]) created.push((await api.vm.create.mutate({ name: `${prefix}-${suffix}`, ...spec })).id);

  await page.goto("/");
  await page.getByLabel("Search VMs by name").fill(prefix);
  await page.getByRole("columnheader", { name: "Name" }).getByRole("button").click();
  await expect.poll(() => names(page)).toEqual([`${prefix}-b`, `${prefix}-d`]);

  // A new VM goes where its name puts it, not first.
  const c = await api.vm.create.mutate({ name: `${prefix}-c`, ...spec });
  created.push(c.id);
  await expect.poll(() => names(page)).toEqual([`${prefix}-b`, `${prefix}-c`, `${prefix}-d`]);
  // A renamed one moves to its new place.
  await api.vm.rename.mutate({ id: c.id, name: `${prefix}-e` });
  await expect.poll(() => names(page)).toEqual([`${prefix}-b`, `${prefix}-d`, `${prefix}-e`]);
  await expect(page.getByTestId("vm-count")).toHaveText("3 VMs");
});
