// An admin's day on the Users and Tokens pages: a person added in the browser signs in with
// the role given; a role change and a disable take effect on their next call; a token made on
// the Tokens page works for a service at once and stops working once revoked there.
import { expect, test } from "@playwright/test";
import { ADMIN, api, clientFor, refusalCode, uniqueName } from "./hangar.ts";

test("an admin adds a person on the Users page, changes their role and disables them; each takes effect at once", async ({ page }) => {
  const person = { email: `${uniqueName("ops")}@e2e.hangar`, password: "a good long password" };
  await page.goto("/users");
  const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "Add a user" }) });
  await form.getByLabel("Name").fill("Grace");
  await form.getByLabel("Email").fill(person.email);
  await form.getByLabel("Password").fill(person.password);
  await form.getByLabel("Role").selectOption("operator");
  await form.getByRole("button", { name: /add/i }).click();
  const row = page.locator(`[data-testid="user-row"][data-email="${person.email}"]`);
  await expect(row).toContainText("active");

  const asPerson = await clientFor(person);
  expect((await asPerson.account.me.query()).user).toMatchObject({ email: person.email, role: "operator" });

  await row.getByLabel(`Role of ${person.email}`).selectOption("viewer");
  await expect.poll(async () => (await asPerson.account.me.query()).user?.role).toBe("viewer");
  const image = (await api.image.list.query()).find((i) => i.name === "hangar-tiny");
  expect(await refusalCode(asPerson.vm.create.mutate({ name: uniqueName("no"), imageId: image?.id ?? "", cpus: 1, memoryMiB: 128 }))).toBe("FORBIDDEN");

  // The only enabled admin's row offers nothing the server would refuse, and says why.
  const adminRow = page.locator(`[data-testid="user-row"][data-email="${ADMIN.email}"]`);
  await expect(adminRow).toContainText("The only enabled admin");
  await expect(adminRow.getByRole("button", { name: "Remove" })).toBeDisabled();
  await expect(adminRow.getByLabel(`Role of ${ADMIN.email}`)).toBeDisabled();

  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row).toContainText("disabled");
  // Disabling ends their sessions: the next call is not theirs any more.
  await expect
    .poll(() =>
      asPerson.account.me.query().then(
        (me) => me.user?.email ?? null,
        () => null,
      ),
    )
    .toBeNull();
});

test("a token made on the Tokens page works for a service at once, and not after it is revoked there", async ({ page }) => {
  const name = uniqueName("svc");
  await page.goto("/tokens");
  await page.getByLabel("Token name").fill(name);
  await page.getByRole("button", { name: /create/i }).click();
  const shown = page.getByTestId("new-token").getByLabel("Token");
  await expect(shown).toHaveText(/^hgr_/);
  const token = (await shown.textContent()) ?? "";

  const service = await clientFor({ token });
  expect((await service.account.me.query()).user).toMatchObject({ role: "admin" });

  const row = page.getByTestId("token-row").filter({ hasText: name });
  // Revoking asks first, naming the token.
  page.once("dialog", (dialog) => {
    expect(dialog.message()).toContain(`Revoke token "${name}"?`);
    void dialog.accept();
  });
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText(/revoked/i);
  expect(await refusalCode(service.vm.list.query())).toBe("UNAUTHORIZED");
});

test("a read-only token made on the Tokens page reads the inventory and is refused every change", async ({ page }) => {
  const name = uniqueName("grafana");
  await page.goto("/tokens");
  await page.getByLabel("Token name").fill(name);
  await page.getByLabel(/Read only/).check();
  await page.getByRole("button", { name: /create/i }).click();
  const shown = page.getByTestId("new-token").getByLabel("Token");
  await expect(shown).toHaveText(/^hgr_/);
  const service = await clientFor({ token: (await shown.textContent()) ?? "" });
  expect(Array.isArray((await service.vm.list.query()).items)).toBe(true);
  expect(await refusalCode(service.token.create.mutate({ name: "escalate" }))).toBe("FORBIDDEN");
  await expect(page.getByTestId("token-row").filter({ hasText: name })).toContainText("read only");
});
