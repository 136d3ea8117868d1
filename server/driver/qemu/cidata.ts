/**
 * The NoCloud seed ISO (volume label "cidata") that cloud-init, and the tiny guest, read
 * at boot: meta-data with the instance-id, hostname and the VM's key (for the image's default
 * user), and user-data: the VM's own, merged with Hangar's account (see renderUserData).
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { parseDocument, type Document } from "yaml";
import { HANGAR_LOGIN_USER } from "../manager.ts";
import { USERS_NOT_A_LIST, UserDataError, contentType, parseCloudConfig } from "../user-data.ts";

export interface CidataInput {
  instanceId: string;
  hostname: string;
  /** Installed for Hangar's own account and, through meta-data, for the image's default user. */
  sshAuthorizedKeys: string[];
  userData: string;
  networkConfig?: string;
}

/**
 * How a later cloud-config part merges into the earlier ones: lists (users:) are appended
 * to, keys the VM's own user-data set are never replaced. (cloud-init's default replaces.)
 */
export const HANGAR_MERGE_TYPE = "list(append)+dict(no_replace,recurse_array)+str()";

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

/**
 * Hangar's own account: what exec, sync, the Shell and readiness log in as. Passwordless
 * sudo gives `asRoot` and root-owned syncs; no password, so only the VM's key gets in.
 */
export function hangarUser(keys: string[]) {
  return {
    name: HANGAR_LOGIN_USER,
    gecos: "Hangar",
    shell: "/bin/sh",
    sudo: "ALL=(ALL) NOPASSWD:ALL",
    lock_passwd: true,
    ssh_authorized_keys: keys.map((key) => key.trim()),
  };
}

/** A MIME message of its own (its headers come first), as cloud-init takes multipart user-data. */
function isMime(text: string): boolean {
  return /^(content-type|mime-version)\s*:/i.test(text);
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

type UserEntry = string | Record<string, unknown>;

function nameOf(entry: UserEntry): string | undefined {
  return typeof entry === "string" ? entry : typeof entry.name === "string" ? entry.name : undefined;
}

/**
 * The users: list with Hangar's account in it. cloud-init accepts a list, a comma-separated
 * string or (an old form) a map of name -> settings. Without users:, cloud-init creates the
 * image's default user; so does the merged list. A user's own "hangar" entry keeps what it
 * sets, gains Hangar's key, and always gets Hangar's sudo rule and locked password.
 */
function mergeUsers(existing: unknown, keys: string[]): UserEntry[] {
  const ours = hangarUser(keys);
  let theirs: UserEntry[];
  if (existing === undefined || existing === null) theirs = ["default"];
  else if (typeof existing === "string")
    theirs = existing
      .split(",")
      .map((name) => name.trim())
      .filter(Boolean);
  else if (Array.isArray(existing)) theirs = existing.filter((e): e is UserEntry => typeof e === "string" || (typeof e === "object" && e !== null));
  else if (typeof existing === "object") {
    theirs = Object.entries(existing as Record<string, unknown>).map(([name, settings]) =>
      typeof settings === "object" && settings !== null ? { name, ...(settings as Record<string, unknown>) } : name,
    );
  } else throw new UserDataError(USERS_NOT_A_LIST);
  const own = theirs.find((entry) => nameOf(entry) === ours.name);
  const rest = theirs.filter((entry) => entry !== own);
  if (own === undefined || typeof own === "string") return [...rest, ours];
  const ownKeys = Array.isArray(own.ssh_authorized_keys) ? own.ssh_authorized_keys.filter((k): k is string => typeof k === "string") : [];
  return [...rest, { ...own, ...ours, shell: own.shell ?? ours.shell, ssh_authorized_keys: [...new Set([...ownKeys, ...ours.ssh_authorized_keys])] }];
}

function cloudConfig(doc: Document, keys: string[]): string {
  const users = mergeUsers((doc.toJS() as Record<string, unknown>).users, keys);
  doc.set("users", doc.createNode(users));
  const text = doc.toString({ lineWidth: 0 });
  return text.startsWith("#cloud-config") ? text : `#cloud-config\n${text}`;
}

/**
 * The user-data on the seed: the VM's own, with Hangar's account (hangarUser) added.
 * - none: a cloud-config with users [default, hangar];
 * - a #cloud-config: the same document (comments kept) with hangar appended to its users:;
 * - anything else (a #! script, #include, a MIME multipart…): a MIME multipart of the VM's
 *   user-data, untouched, and Hangar's cloud-config, whose Merge-Type appends to users: of
 *   any cloud-config inside and replaces nothing, so nothing of the VM's own is lost.
 */
export function renderUserData(userData: string | undefined | null, keys: string[]): string {
  const text = userData ?? "";
  if (!text.trim()) return cloudConfig(emptyDocument(), keys);
  const doc = parseCloudConfig(text);
  return doc ? cloudConfig(doc, keys) : multipart(text, keys);
}

function multipart(userData: string, keys: string[]): string {
  const own = withNewline(userData);
  const hangar = `#cloud-config\n${stringifyUsers(keys)}`;
  // Deterministic (golden tests), and not a line of either part.
  let boundary = `==hangar-${createHash("sha256").update(own).digest("hex").slice(0, 16)}==`;
  while (own.includes(boundary)) boundary = `=${boundary}=`;
  const ownPart = isMime(own)
    ? own
    : `Content-Type: ${contentType(own)}; charset="utf-8"\nMIME-Version: 1.0\nContent-Disposition: attachment; filename="user-data"\n\n${own}`;
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "MIME-Version: 1.0",
    "",
    `--${boundary}`,
    ownPart + `--${boundary}`,
    'Content-Type: text/cloud-config; charset="utf-8"',
    "MIME-Version: 1.0",
    'Content-Disposition: attachment; filename="hangar.cfg"',
    `Merge-Type: ${HANGAR_MERGE_TYPE}`,
    "",
    hangar + `--${boundary}--`,
    "",
  ].join("\n");
}

function emptyDocument(): Document {
  const doc: Document = parseDocument("#cloud-config\n");
  doc.contents = doc.createNode({});
  return doc;
}

function stringifyUsers(keys: string[]): string {
  const doc = emptyDocument();
  doc.commentBefore = null;
  doc.set("users", doc.createNode(["default", hangarUser(keys)]));
  return doc.toString({ lineWidth: 0 });
}

/**
 * Hangar's defaults, which the VM's own user-data overrides (cloud-init's vendor-data): the
 * guest's hostname in /etc/hosts, as clouds' images have it. Without it, sudo looked the
 * hostname up in DNS at every call (seconds under nat) and said it could not resolve it.
 */
export const VENDOR_DATA = "#cloud-config\nmanage_etc_hosts: true\n";

/** Writes the seed files and builds `isoPath` with genisoimage (-V cidata -J -r). */
export async function writeCidataIso(isoPath: string, input: CidataInput): Promise<void> {
  const userData = renderUserData(input.userData, input.sshAuthorizedKeys);
  const work = await mkdtemp(path.join(os.tmpdir(), "hangar-cidata-"));
  try {
    const files = ["user-data", "meta-data", "vendor-data"];
    await writeFile(path.join(work, "user-data"), userData);
    await writeFile(path.join(work, "meta-data"), renderMetaData(input));
    await writeFile(path.join(work, "vendor-data"), VENDOR_DATA);
    if (input.networkConfig) {
      await writeFile(path.join(work, "network-config"), input.networkConfig);
      files.push("network-config");
    }
    await execa("genisoimage", ["-quiet", "-output", isoPath, "-V", "cidata", "-J", "-r", "--", ...files], { cwd: work });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
