/**
 * Two hosts on one PostgreSQL database, as a team runs Hangar on two machines: a person on
 * alpha's dashboard watches a VM that lives on beta change as beta changes it, opens its
 * console, moves it to alpha and back, evacuates and restores beta, and removes a host gone
 * for good. The spec starts (and stops) its own two servers (server/testing/cluster.ts), so
 * it needs PostgreSQL at HANGAR_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
 */
import { expect, test } from "@playwright/test";
import { CLUSTER_ADMIN, startCluster, type Cluster } from "../server/testing/cluster.ts";
import { uniqueName } from "./hangar.ts";

const LONG = { timeout: 60_000 };
let cluster: Cluster | undefined;

// This spec signs in on its own cluster, not on the suite's server.
test.use({ storageState: { cookies: [], origins: [] } });

test.beforeAll(async () => {
  test.setTimeout(600_000);
  cluster = await startCluster({ names: ["alpha", "beta"] });
});
test.afterAll(async () => {
  test.setTimeout(180_000);
  if (!cluster) return;
  const beta = cluster.host("beta");
  for (const vm of await cluster.db.vm.findMany({ select: { id: true } })) {
    await beta.api.vm.stop.mutate({ id: vm.id, timeoutSec: 5 }).catch(() => undefined);
    await beta.api.vm.delete.mutate({ id: vm.id }).catch(() => undefined);
  }
  await cluster.close({ stopVms: false });
});

test("alpha's dashboard shows a VM of beta change live, opens its console and moves it to alpha and back", async ({ browser }) => {
  if (!cluster) throw new Error("the cluster did not start");
  const alpha = cluster.host("alpha");
  const beta = cluster.host("beta");
  const context = await browser.newContext({ baseURL: alpha.url });
  const signIn = await context.request.post("/api/auth/sign-in/email", { data: CLUSTER_ADMIN, headers: { origin: alpha.url } });
  expect(signIn.ok()).toBe(true);
  const page = await context.newPage();
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Virtual machines" })).toBeVisible();
  await expect(page.getByText("live", { exact: true })).toBeVisible(LONG);

  // Beta makes and starts a VM; alpha's page, never reloaded, follows.
  const name = uniqueName("e2e-beta");
  const image = (await beta.api.image.list.query()).find((i) => i.name === "hangar-tiny");
  const vm = await beta.api.vm.create.mutate({ name, imageId: image?.id ?? "", cpus: 1, memoryMiB: 256, hostId: beta.id });
  expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(beta.id);
  const row = page.locator(`[data-testid="vm-row"][data-vm-name="${name}"]`);
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped", LONG);
  await beta.api.vm.start.mutate({ id: vm.id });
  await expect(row.getByTestId("vm-state")).toHaveText("Running", LONG);

  // Its console, opened on alpha, is beta's VM's serial port.
  await row.getByRole("link", { name }).click();
  await expect(page).toHaveURL(new RegExp(`/vms/${vm.id}$`));
  await expect(page.getByTestId("terminal-console")).toHaveAttribute("data-phase", "connected", LONG);
  const screen = page.getByTestId("terminal-console").locator(".xterm-accessibility-tree");
  await page.getByTestId("terminal-console").locator(".xterm").click();
  await page.keyboard.type("\n");
  await expect(screen).toContainText("login:", LONG);
  await page.keyboard.type("root\n");
  await expect(screen).toContainText(`root@${name}`, LONG);
  await page.keyboard.type("echo from-$((40+2))\n");
  await expect(screen).toContainText("from-42", LONG);

  // Back on the list, beta stops it: alpha's page follows again.
  await page.goto("/");
  await expect(row.getByTestId("vm-state")).toHaveText("Running", LONG);
  await beta.api.vm.stop.mutate({ id: vm.id, timeoutSec: 5 });
  await expect(row.getByTestId("vm-state")).toHaveText("Stopped", LONG);

  // Stopped, it moves to alpha from its page: the Host card says where it is.
  await row.getByRole("link", { name }).click();
  const hostCard = page.getByRole("region", { name: "Host" });
  await expect(hostCard).toContainText("On host beta.", LONG);
  await hostCard.getByRole("combobox", { name: "To host" }).selectOption({ label: "alpha" });
  await hostCard.getByRole("button", { name: "Move" }).click();
  await expect(hostCard).toContainText("On host alpha.", LONG);
  expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(alpha.id);
  // And back: the card offers beta now, not alpha, the host picked before.
  await expect(hostCard.getByRole("combobox", { name: "To host" })).toHaveValue(beta.id);
  await hostCard.getByRole("button", { name: "Move" }).click();
  await expect(hostCard).toContainText("On host beta.", LONG);

  // Beta evacuated from the Hosts page: its VM goes to alpha, and Restore brings it back.
  await page.goto("/hosts");
  const betaCard = page.locator('[data-testid="host-card"][data-host-name="beta"]');
  page.on("dialog", (dialog) => void dialog.accept());
  await betaCard.getByRole("button", { name: "Evacuate" }).click();
  await expect(betaCard.getByTestId("relocation")).toContainText(`${name} → alpha`, LONG);
  await expect(betaCard.getByTestId("host-maintenance")).toHaveText("maintenance");
  expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(alpha.id);
  await betaCard.getByRole("button", { name: "Restore" }).click();
  await expect(betaCard.getByTestId("relocation")).toContainText(`${name} → beta`, LONG);
  await expect(betaCard.getByTestId("host-maintenance")).toHaveCount(0);
  expect((await cluster.db.vm.findUniqueOrThrow({ where: { id: vm.id } })).hostId).toBe(beta.id);

  // A machine gone for good (offline an hour, nothing on it) is removed from the list.
  const heartbeatAt = new Date(Date.now() - 3_600_000);
  await cluster.db.host.create({ data: { name: "gamma", apiAddress: "http://127.0.0.1:9", heartbeatAt, accelerator: "tcg", freeMemoryMiB: 0 } });
  await page.reload();
  const gammaCard = page.locator('[data-testid="host-card"][data-host-name="gamma"]');
  await expect(gammaCard.getByTestId("host-status")).toHaveText("offline", LONG);
  await gammaCard.getByRole("button", { name: "Remove" }).click();
  await expect(gammaCard).toHaveCount(0, LONG);
  expect(await cluster.db.host.count({ where: { name: "gamma" } })).toBe(0);
  await context.close();
});
