/**
 * The NoCloud seed ISO (volume label "cidata") that cloud-init, and the tiny guest, read
 * at boot: user-data as given, meta-data with the instance-id, hostname and the VM's key.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";

export interface CidataInput {
  instanceId: string;
  hostname: string;
  sshAuthorizedKeys: string[];
  userData: string;
  networkConfig?: string;
}

/** A YAML scalar in double quotes, safe for any single-line text. */
function yamlString(value: string): string {
  return JSON.stringify(value);
}

export function renderMetaData(input: CidataInput): string {
  const lines = [`instance-id: ${yamlString(input.instanceId)}`, `local-hostname: ${yamlString(input.hostname)}`];
  if (input.sshAuthorizedKeys.length > 0) {
    lines.push("public-keys:", ...input.sshAuthorizedKeys.map((key) => `  - ${yamlString(key.trim())}`));
  }
  return `${lines.join("\n")}\n`;
}

/** Default user-data when the VM has none: an empty cloud-config. */
export function renderUserData(userData: string | undefined | null): string {
  const text = userData?.trim() ? userData : "#cloud-config\n";
  return text.endsWith("\n") ? text : `${text}\n`;
}

/** Writes the seed files and builds `isoPath` with genisoimage (-V cidata -J -r). */
export async function writeCidataIso(isoPath: string, input: CidataInput): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), "hangar-cidata-"));
  try {
    const files = ["user-data", "meta-data"];
    await writeFile(path.join(work, "user-data"), renderUserData(input.userData));
    await writeFile(path.join(work, "meta-data"), renderMetaData(input));
    if (input.networkConfig) {
      await writeFile(path.join(work, "network-config"), input.networkConfig);
      files.push("network-config");
    }
    await execa("genisoimage", ["-quiet", "-output", isoPath, "-V", "cidata", "-J", "-r", "--", ...files], { cwd: work });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
