// The Account page: a person adds their own SSH public key (it shows with the fingerprint
// ssh-keygen gives), is told in a sentence when they paste the wrong thing (a private key),
// and removes the key again.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, test } from "@playwright/test";
import { execa } from "execa";
import { api } from "./hangar.ts";

test("a person adds their SSH key on the Account page, is told when they paste a private key, and removes it", async ({ page }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hangar-e2e-key-"));
  try {
    const keyFile = path.join(dir, "id_ed25519");
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "e2e@laptop", "-f", keyFile]);
    const publicKey = readFileSync(`${keyFile}.pub`, "utf8").trim();
    const fingerprint = (await execa("ssh-keygen", ["-l", "-E", "sha256", "-f", `${keyFile}.pub`])).stdout.split(" ")[1] ?? "";
    expect(fingerprint).toMatch(/^SHA256:/);

    const before = await api.account.sshKeys.query();
    await page.goto("/");
    await page.getByRole("link", { name: "Account" }).click();
    await expect(page.getByRole("heading", { name: "Account" })).toBeVisible();

    // The private key by mistake: refused with a sentence, and nothing is kept.
    const form = page.locator("form").filter({ has: page.getByRole("heading", { name: "Add an SSH key" }) });
    await form.getByLabel("Public key").fill(readFileSync(keyFile, "utf8"));
    await form.getByRole("button", { name: "Add key" }).click();
    await expect(form.getByRole("alert")).toContainText("That is a private key: never paste it anywhere.");
    expect(await api.account.sshKeys.query()).toEqual(before);

    await form.getByLabel("Public key").fill(publicKey);
    await form.getByRole("button", { name: "Add key" }).click();
    await expect(form.getByRole("alert")).toHaveCount(0);
    const row = page.getByTestId("ssh-key-row").filter({ hasText: fingerprint });
    await expect(row).toHaveCount(1);
    // No name given: the key's comment names it.
    await expect(row).toContainText("e2e@laptop");
    await expect(row).toContainText(fingerprint);
    expect(await api.account.sshKeys.query()).toEqual([...before, expect.objectContaining({ name: "e2e@laptop", fingerprint })]);

    await row.getByRole("button", { name: "Remove" }).click();
    await expect(row).toHaveCount(0);
    expect(await api.account.sshKeys.query()).toEqual(before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
