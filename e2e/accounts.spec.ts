import { expect, test, type Page } from "@playwright/test";
import { ADMIN, STORAGE_STATE, api, clientFor, removeVm, refusalCode, uniqueName } from "./hangar.ts";

const created: string[] = [];
test.afterEach(async () => {
  for (const id of created.splice(0)) await removeVm(id);
});

async function addUser(role: "operator" | "viewer") {
  const email = `${uniqueName(role)}@e2e.hangar`;
  const password = "a good long password";
  await api.user.add.mutate({ email, name: role, password, role });
  return { email, password };
}

async function tinyImageId(): Promise<string> {
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  if (!image) throw new Error("the built-in image is missing");
  return image.id;
}

/** Collects what the browser reports about blocked scripts, styles or connections. */
function cspViolations(page: Page): string[] {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  return violations;
}

test("the dashboard works under Hangar's security headers, with no policy violation", async ({ page }) => {
  const violations = cspViolations(page);
  const response = await page.goto("/");
  const headers = response?.headers() ?? {};
  expect(headers["content-security-policy"]).toMatch(/script-src 'self' 'nonce-[^']+'/);
  expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(headers).toMatchObject({ "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin" });
  // Rendered from tRPC data and interactive: the scripts ran.
  await expect(page.getByText(`${ADMIN.email} · admin`)).toBeVisible();
  await page.getByRole("link", { name: "Images" }).click();
  await expect(page).toHaveURL(/\/images$/);
  await expect(page.getByText("hangar-tiny").first()).toBeVisible();
  expect(violations).toEqual([]);
});

test("the first-admin form and sign-in send a signed-in person on instead of asking again", async ({ page }) => {
  // The first-admin form would say Hangar has no users yet; it has.
  await page.goto("/setup");
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
  await page.goto("/sign-in?next=%2Fimages");
  await expect(page).toHaveURL(/\/images$/);
  await expect(page.getByRole("heading", { name: "Images" })).toBeVisible();
});

test.describe("without a session", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("the first-admin form of a Hangar that has its admin sends the visitor to sign in", async ({ page }) => {
    await page.goto("/setup");
    await expect(page).toHaveURL(/\/sign-in$/);
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  });

  test("the sign-in page works under Hangar's security headers, with no policy violation", async ({ page }) => {
    const violations = cspViolations(page);
    const response = await page.goto("/sign-in");
    expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'self' 'nonce-[^']+'/);
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText(`${ADMIN.email} · admin`)).toBeVisible();
    expect(violations).toEqual([]);
  });

  test("a person signs in with email and password, and signs out, and their other tab follows", async ({ page }) => {
    await page.goto("/");
    await expect(page).toHaveURL(/\/sign-in$/);
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toBeVisible();
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText(`${ADMIN.email} · admin`)).toBeVisible();
    await expect(page.getByRole("link", { name: "Users" })).toBeVisible();
    const otherTab = await page.context().newPage();
    await otherTab.goto("/images");
    await expect(otherTab.getByText("live", { exact: true })).toBeVisible();
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/sign-in$/);
    // Its live stream ends with the session; it goes to sign-in, to come back to its page.
    await expect(otherTab).toHaveURL(/\/sign-in\?next=%2Fimages$/);
    await otherTab.close();
  });

  test("a viewer sees no action buttons, and the API refuses their start with FORBIDDEN", async ({ page }) => {
    const vm = await api.vm.create.mutate({ name: uniqueName("e2e-v"), imageId: await tinyImageId(), cpus: 1, memoryMiB: 128 });
    created.push(vm.id);
    const viewer = await addUser("viewer");
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(viewer.email);
    await page.getByLabel("Password").fill(viewer.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    const row = page.locator(`[data-testid="vm-row"][data-vm-id="${vm.id}"]`);
    await expect(row.getByTestId("vm-state")).toHaveText("Stopped");
    await expect(row.getByRole("button")).toHaveCount(0);
    await expect(page.getByRole("button", { name: "New VM" })).toHaveCount(0);
    // The VM's page says why it offers nothing to do, instead of leaving the buttons to be looked for.
    await row.getByRole("link", { name: vm.name }).click();
    await expect(page.getByRole("heading", { name: vm.name })).toBeVisible();
    await expect(page.getByTestId("vm-watch-only")).toHaveText(
      `You are signed in as a viewer: you can watch this VM; only its owner ${ADMIN.email} and admins can change it.`,
    );
    await expect(page.locator(".vm-actions").getByRole("button")).toHaveCount(0);
    const asViewer = await clientFor(viewer);
    expect(await refusalCode(asViewer.vm.start.mutate({ id: vm.id }))).toBe("FORBIDDEN");
    expect((await api.vm.get.query({ id: vm.id })).state).toBe("Stopped");
  });

  test("an admin sets a lost password on the Users page; its owner then changes it on the Account page", async ({ page, browser }) => {
    const operator = await addUser("operator");
    const asAdmin = await browser.newContext({ storageState: STORAGE_STATE });
    const adminPage = await asAdmin.newPage();
    await adminPage.goto("/users");
    const row = adminPage.locator(`[data-testid="user-row"][data-email="${operator.email}"]`);
    await row.getByText("Set password").click();
    await row.getByLabel(`New password for ${operator.email}`).fill("set by the admin");
    await row.getByRole("button", { name: "Set" }).click();
    await expect(adminPage.getByRole("status")).toHaveText(
      `${operator.email} has a new password; their sessions ended. Tell them the password another way than email.`,
    );
    await asAdmin.close();

    const signIn = async (password: string) => {
      await page.goto("/sign-in");
      await page.getByLabel("Email").fill(operator.email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Sign in" }).click();
    };
    await signIn(operator.password);
    await expect(page.getByRole("alert")).toBeVisible();
    await signIn("set by the admin");
    await expect(page.getByText(`${operator.email} · operator`)).toBeVisible();
    await page.goto("/account");
    await page.getByLabel("Current password").fill("not it at all");
    await page.getByLabel("New password (8 to 128 characters)").fill("chosen by its owner");
    await page.getByLabel("New password again").fill("chosen by its owner");
    await page.getByRole("button", { name: "Change password" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "The current password is not right; type it again." })).toBeVisible();
    await page.getByLabel("Current password").fill("set by the admin");
    await page.getByLabel("New password (8 to 128 characters)").fill("chosen by its owner");
    await page.getByLabel("New password again").fill("chosen by its owner");
    await page.getByRole("button", { name: "Change password" }).click();
    await expect(page.getByRole("status")).toHaveText("Password changed; your other sessions ended.");
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/sign-in$/);
    await signIn("chosen by its owner");
    await expect(page.getByText(`${operator.email} · operator`)).toBeVisible();
  });

  test("an operator who opens the admins' pages reads why they are empty, not an empty form", async ({ page }) => {
    const operator = await addUser("operator");
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(operator.email);
    await page.getByLabel("Password").fill(operator.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("button", { name: "New VM" })).toBeVisible();
    await page.goto("/users");
    await expect(page.getByRole("status")).toHaveText(/^Only admins see the users and their roles\. You are signed in as an operator/);
    await expect(page.getByRole("heading", { name: "Add a user" })).toHaveCount(0);
    await page.goto("/audit");
    await expect(page.getByRole("status")).toHaveText(/^Only admins see the audit log\./);
  });
});

test("operator B can neither change operator A's VM nor see A's tokens", async () => {
  const a = await clientFor(await addUser("operator"));
  const b = await clientFor(await addUser("operator"));
  const vm = await a.vm.create.mutate({ name: uniqueName("e2e-a"), imageId: await tinyImageId(), cpus: 1, memoryMiB: 128 });
  created.push(vm.id);
  const token = await a.token.create.mutate({ name: "mine" });
  const attempts = {
    "vm.start": b.vm.start.mutate({ id: vm.id }),
    "vm.stop": b.vm.stop.mutate({ id: vm.id }),
    "vm.suspend": b.vm.suspend.mutate({ id: vm.id }),
    "vm.delete": b.vm.delete.mutate({ id: vm.id }),
    "vm.clone": b.vm.clone.mutate({ id: vm.id, name: uniqueName("e2e-x") }),
    "snapshot.create": b.snapshot.create.mutate({ id: vm.id, name: "s" }),
    "snapshot.revert": b.snapshot.revert.mutate({ id: vm.id, name: "s" }),
    "snapshot.delete": b.snapshot.delete.mutate({ id: vm.id, name: "s" }),
    "pool.release": b.pool.release.mutate({ vmId: vm.id }),
    "user.list": b.user.list.query(),
    "audit.list": b.audit.list.query({}),
  };
  const codes = await Promise.all(Object.entries(attempts).map(async ([name, call]) => [name, await refusalCode(call)]));
  expect(codes).toEqual(Object.keys(attempts).map((name) => [name, "FORBIDDEN"]));
  expect(await refusalCode(b.token.revoke.mutate({ id: token.id }))).toBe("NOT_FOUND");
  expect(await b.token.list.query()).toEqual([]);
});

test("an admin gives a VM to an operator on its page, and the operator then controls it", async ({ page }) => {
  const person = await addUser("operator");
  const operator = await clientFor(person);
  const vm = await api.vm.create.mutate({ name: uniqueName("e2e-give"), imageId: await tinyImageId(), cpus: 1, memoryMiB: 128 });
  created.push(vm.id);
  expect(await refusalCode(operator.vm.setTags.mutate({ id: vm.id, tags: ["mine"] }))).toBe("FORBIDDEN");
  await page.goto(`/vms/${vm.id}`);
  await page.getByTestId("vm-owner").getByLabel("Owner").selectOption({ label: person.email });
  await expect(page.getByTestId("event-list").getByRole("cell", { name: `Given to ${person.email}` })).toBeVisible();
  expect((await api.vm.get.query({ id: vm.id })).owner?.email).toBe(person.email);
  expect(await operator.vm.setTags.mutate({ id: vm.id, tags: ["mine"] })).toEqual({ tags: ["mine"] });
  expect(await refusalCode(operator.vm.setOwner.mutate({ id: vm.id, ownerId: null }))).toBe("FORBIDDEN");
});

test("a change made through the API with a token shows up in an open dashboard without reload", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByText("live", { exact: true })).toBeVisible();
  const { token } = await api.token.create.mutate({ name: uniqueName("svc") });
  const service = await clientFor({ token });
  const name = uniqueName("e2e-t");
  const vm = await service.vm.create.mutate({ name, imageId: await tinyImageId(), cpus: 1, memoryMiB: 128 });
  created.push(vm.id);
  const row = page.locator(`[data-testid="vm-row"][data-vm-id="${vm.id}"]`);
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped");
  await service.vm.start.mutate({ id: vm.id });
  await expect(row.getByTestId("vm-state")).toHaveText("Running");
  await service.vm.stop.mutate({ id: vm.id, timeoutSec: 0 });
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped");
  const events = await api.audit.list.query({ vmId: vm.id });
  expect(events.events.some((e) => e.action === "start" && e.actor.startsWith("token "))).toBe(true);
});
