/**
 * Users' own SSH public keys. A VM a user creates gets them through cloud-init (Hangar's
 * login account); a pooled VM a user acquires, or a running VM whose user asks for it
 * (vm.addMyKeys: one created before the key was added), gets them appended to the login
 * user's authorized_keys. Only the public half is ever seen here.
 */
import { createHash } from "node:crypto";
import type { Db } from "../db.ts";
import { HangarError } from "../errors.ts";

/** Key types OpenSSH accepts for users (DSA is gone from OpenSSH; so it is here). */
const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
] as const;

export const MAX_SSH_KEYS = 32;

export interface ParsedKey {
  /** "<type> <base64>", the form installed in authorized_keys (with the name as comment). */
  publicKey: string;
  comment: string;
  fingerprint: string;
}

const TOO_LONG = 16 * 1024;

/**
 * One OpenSSH public key line (as in id_ed25519.pub), checked: a known type, base64 whose
 * decoded blob names the same type. A sentence the person can act on when it is not one.
 */
export function parsePublicKey(text: string): ParsedKey {
  const line = text.trim();
  const help = 'Paste one OpenSSH public key line, as in ~/.ssh/id_ed25519.pub ("ssh-ed25519 AAAA… you@laptop").';
  if (line.length === 0) throw new HangarError("INVALID_INPUT", `The key is empty. ${help}`);
  if (line.length > TOO_LONG) throw new HangarError("INVALID_INPUT", `That is too long for a public key. ${help}`);
  // Before the line count: a pasted private key file is many lines, and that is not the news.
  if (line.includes("PRIVATE KEY"))
    throw new HangarError("INVALID_INPUT", "That is a private key: never paste it anywhere. Paste the .pub file's line instead.");
  if (/[\r\n]/.test(line)) throw new HangarError("INVALID_INPUT", `That is more than one line; add one key at a time. ${help}`);
  const [type = "", data = "", ...rest] = line.split(/\s+/);
  if (!(KEY_TYPES as readonly string[]).includes(type)) {
    // The word is named back only when it could be a key type: pasted text can be anything.
    const what = /^[a-z0-9][a-z0-9@.-]{0,39}$/.test(type) ? `"${type}" is not an SSH key type Hangar takes` : "That does not start with an SSH key type";
    throw new HangarError("INVALID_INPUT", `${what} (${KEY_TYPES.slice(0, 5).join(", ")}…). ${help}`);
  }
  const blob = /^[A-Za-z0-9+/]+={0,2}$/.test(data) ? Buffer.from(data, "base64") : Buffer.alloc(0);
  // The blob starts with its own type as an SSH string: a 4-byte length, then the name.
  const named = blob.length >= 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1") : "";
  if (named !== type || blob.length < 4 + type.length + 16) {
    throw new HangarError("INVALID_INPUT", `The key's data is damaged or incomplete (copy the whole line). ${help}`);
  }
  const fingerprint = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
  const comment = rest
    .join(" ")
    .replace(/[^\x20-\x7e]/g, "")
    .slice(0, 100);
  return { publicKey: `${type} ${data}`, comment, fingerprint };
}

export function listSshKeys(db: Db, userId: string) {
  return db.sshKey.findMany({
    where: { userId },
    orderBy: { createdAt: "asc" },
    select: { id: true, name: true, publicKey: true, fingerprint: true, createdAt: true },
  });
}

export async function addSshKey(db: Db, userId: string, input: { publicKey: string; name?: string }) {
  const key = parsePublicKey(input.publicKey);
  if (await db.sshKey.findUnique({ where: { userId_fingerprint: { userId, fingerprint: key.fingerprint } } })) {
    throw new HangarError("ALREADY_EXISTS", `You already added this key (${key.fingerprint}).`);
  }
  if ((await db.sshKey.count({ where: { userId } })) >= MAX_SSH_KEYS) {
    throw new HangarError("INVALID_INPUT", `You have ${MAX_SSH_KEYS} keys, the most Hangar keeps; remove one first.`);
  }
  const name = input.name?.trim() || key.comment || key.fingerprint.slice(0, 19);
  return db.sshKey.create({
    data: { userId, name, publicKey: key.publicKey, fingerprint: key.fingerprint },
    select: { id: true, name: true, publicKey: true, fingerprint: true, createdAt: true },
  });
}

export async function removeSshKey(db: Db, userId: string, keyId: string) {
  const key = await db.sshKey.findUnique({ where: { id: keyId } });
  // Someone else's key is "not found" to you, as with tokens.
  if (!key || key.userId !== userId) throw new HangarError("NOT_FOUND", `No SSH key with id "${keyId}" among yours.`);
  await db.sshKey.delete({ where: { id: keyId } });
  return { id: key.id, name: key.name, fingerprint: key.fingerprint };
}

/** The lines to install for `userId` (none for a VM without an owner). */
export async function authorizedKeysOf(db: Db, userId: string | null | undefined): Promise<string[]> {
  if (!userId) return [];
  const keys = await db.sshKey.findMany({ where: { userId }, orderBy: { createdAt: "asc" }, select: { publicKey: true, name: true } });
  return keys.map((key) => `${key.publicKey} ${key.name}`.trim());
}

/**
 * Run as the login user with the key lines on stdin: appends each one whose type and data are
 * not in authorized_keys yet (whatever its comment), and prints how many it appended. POSIX
 * sh and grep, as in the tiny guest's busybox; no globbing of the words a key line splits into.
 */
export const INSTALL_KEYS_COMMAND = [
  "sh",
  "-c",
  [
    'set -f; umask 077; mkdir -p "$HOME/.ssh"; file="$HOME/.ssh/authorized_keys"; touch "$file"; added=0',
    // A last line without its newline would run into the first key appended.
    '[ -z "$(tail -c 1 "$file")" ] || echo >> "$file"',
    'while IFS= read -r line; do set -- $line; [ $# -ge 2 ] || continue; grep -qF -- "$1 $2" "$file" && continue; printf \'%s\\n\' "$line" >> "$file"; added=$((added + 1)); done',
    'echo "$added"',
  ].join("\n"),
] as const;
