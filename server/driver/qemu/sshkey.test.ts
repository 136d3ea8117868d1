import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { utils } from "ssh2";
import { describe, expect, it } from "vitest";
import { generateSshKeyPair } from "./sshkey.ts";

describe("generateSshKeyPair", () => {
  it("writes an OpenSSH ed25519 key that ssh-keygen and ssh2 both read", async () => {
    const keys = generateSshKeyPair("hangar-test");
    const dir = mkdtempSync(path.join(os.tmpdir(), "hangar-key-"));
    try {
      const file = path.join(dir, "id_ed25519");
      writeFileSync(file, keys.privateKey, { mode: 0o600 });
      const { stdout } = await execa("ssh-keygen", ["-y", "-f", file]);
      expect(stdout.trim()).toBe(keys.publicKey);
      const parsed = utils.parseKey(keys.privateKey);
      expect(parsed instanceof Error ? parsed.message : parsed.type).toBe("ssh-ed25519");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes a different key each time", () => {
    expect(generateSshKeyPair("a").publicKey).not.toBe(generateSshKeyPair("a").publicKey);
  });
});
