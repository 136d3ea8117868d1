import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { renderMetaData, renderUserData, writeCidataIso } from "./cidata.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-cidata-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function readIsoFile(iso: string, name: string): Promise<string> {
  const { stdout } = await execa("isoinfo", ["-J", "-i", iso, "-x", `/${name}`]);
  return stdout;
}

describe("cidata ISO", () => {
  it("holds user-data and meta-data under the volume label cidata", async () => {
    const iso = path.join(work, "seed.iso");
    await writeCidataIso(iso, {
      instanceId: "cm3vm0001",
      hostname: "web-1",
      sshAuthorizedKeys: ["ssh-ed25519 AAAAC3Nza test@hangar"],
      userData: "#cloud-config\nruncmd:\n  - echo hi\n",
    });
    const { stdout: volume } = await execa("isoinfo", ["-d", "-i", iso]);
    expect(volume).toMatch(/Volume id: cidata/);
    expect(await readIsoFile(iso, "meta-data")).toBe(
      'instance-id: "cm3vm0001"\nlocal-hostname: "web-1"\npublic-keys:\n  - "ssh-ed25519 AAAAC3Nza test@hangar"',
    );
    expect(await readIsoFile(iso, "user-data")).toBe("#cloud-config\nruncmd:\n  - echo hi");
  });

  it("adds network-config only when given", async () => {
    const iso = path.join(work, "net.iso");
    await writeCidataIso(iso, { instanceId: "i", hostname: "h", sshAuthorizedKeys: [], userData: "", networkConfig: "version: 2\n" });
    const { stdout } = await execa("isoinfo", ["-J", "-l", "-i", iso]);
    expect(stdout).toContain("network-config");
    expect(await readIsoFile(iso, "user-data")).toBe("#cloud-config");
  });

  it("quotes values so hostile text stays one YAML scalar", () => {
    const text = renderMetaData({ instanceId: 'a"b\nc', hostname: "h: x", sshAuthorizedKeys: [], userData: "" });
    expect(text).toBe('instance-id: "a\\"b\\nc"\nlocal-hostname: "h: x"\n');
    expect(renderUserData(null)).toBe("#cloud-config\n");
  });
});
