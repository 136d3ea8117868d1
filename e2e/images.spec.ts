// The Images page: an operator imports a disk placed in the images directory as a UEFI image
// that logs in as root, sees it ready with those settings on its page and offered in the New
// VM dialog, is told in a sentence (naming no host path) when the path is outside the images
// directory, and deletes it.
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { expect, test } from "@playwright/test";
import { execa } from "execa";
import { api, stateDir, uniqueName } from "./hangar.ts";

test("an image imported on the Images page as UEFI with its own login account shows them, is offered for new VMs, and goes", async ({ page }) => {
  const name = uniqueName("img");
  const imagesDir = path.join(stateDir(), "images");
  mkdirSync(imagesDir, { recursive: true });
  const file = `${name}.qcow2`;
  await execa("qemu-img", ["create", "-q", "-f", "qcow2", "--", path.join(imagesDir, file), "64M"]);

  await page.goto("/images");
  const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "Import an image" }) });
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("A file in the images directory").check();

  // Outside the images directory: refused, and the sentence does not echo host paths back.
  await form.getByLabel("Path").fill("/etc/passwd");
  await form.getByRole("button", { name: "Import image" }).click();
  const refusal = form.getByRole("alert");
  await expect(refusal).toBeVisible();
  await expect(refusal).not.toContainText(stateDir());

  await form.getByLabel("Path").fill(file);
  await form.getByLabel("Firmware").selectOption("uefi");
  await form.getByLabel("Login account").fill("root");
  await form.getByRole("button", { name: "Import image" }).click();
  await expect(form.getByRole("status")).toContainText(name);
  await expect.poll(async () => (await api.image.list.query()).find((image) => image.name === name)?.status, { timeout: 60_000 }).toBe("ready");

  await page.getByRole("link", { name, exact: true }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  await expect(page.getByText("through the firmware (UEFI)")).toBeVisible();
  await expect(page.locator("dd").filter({ hasText: /^root$/ })).toBeVisible();

  await page.goto("/");
  await page.getByRole("button", { name: "New VM" }).click();
  const dialog = page.getByRole("dialog", { name: "New VM" });
  await expect(dialog.getByLabel("Image", { exact: true }).locator("option", { hasText: name })).toHaveCount(1);
  await dialog.getByRole("button", { name: "Cancel" }).click();

  const image = (await api.image.list.query()).find((i) => i.name === name);
  expect(image).toMatchObject({ firmware: "uefi", loginUser: "root" });
  await api.image.delete.mutate({ id: image?.id ?? "" });
});

test("an import that fails after it started says so where it said it was importing", async ({ page }) => {
  const name = uniqueName("img-bad");
  // A file server that has no such file, on the loopback address the server may import from.
  const files = createServer((_, res) => res.writeHead(404).end("no such file"));
  await new Promise<void>((resolve) => files.listen(0, "127.0.0.2", resolve));
  const address = files.address();
  const port = address !== null && typeof address === "object" ? address.port : 0;
  try {
    await page.goto("/images");
    const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "Import an image" }) });
    await form.getByLabel("Name").fill(name);
    await form.getByLabel("URL", { exact: true }).fill(`http://127.0.0.2:${port}/disk.qcow2`);
    await form.getByRole("button", { name: "Import image" }).click();
    await expect(form.getByRole("status")).toHaveText(`The import of ${name} failed; the images table says why.`);
    const image = (await api.image.list.query()).find((i) => i.name === name);
    expect(image?.status).toBe("failed");
    await api.image.delete.mutate({ id: image?.id ?? "" });
  } finally {
    files.close();
  }
});
