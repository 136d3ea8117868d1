/**
 * The one-time setup code for the first admin, as Jenkins' initialAdminPassword: made at
 * start-up while no user exists, printed in the log and kept in <state>/setup-code (0600),
 * so only someone who can read the server's log or files can claim a fresh install.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

export const SETUP_CODE_FILE = "setup-code";

function codeFile(stateDir: string): string {
  return path.join(stateDir, SETUP_CODE_FILE);
}

/** A fresh code, replacing any earlier one, written atomically with mode 0600. */
export function issueSetupCode(stateDir: string): string {
  const code = randomBytes(16).toString("hex");
  const file = codeFile(stateDir);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${code}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
  return code;
}

function currentCode(stateDir: string): string | undefined {
  try {
    return readFileSync(codeFile(stateDir), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Whether `given` is the current code, compared in constant time. */
export function setupCodeMatches(stateDir: string, given: string): boolean {
  const code = currentCode(stateDir);
  if (!code) return false;
  const digest = (text: string) => createHash("sha256").update(text.trim()).digest();
  return timingSafeEqual(digest(code), digest(given));
}

/**
 * Takes the code out of use. Returns false when another request took it first, so two
 * requests with the same code cannot both create a first admin.
 */
export function claimSetupCode(stateDir: string): boolean {
  try {
    unlinkSync(codeFile(stateDir));
    return true;
  } catch {
    return false;
  }
}

/** Puts a claimed code back (the admin it was claimed for could not be created). */
export function restoreSetupCode(stateDir: string, code: string): void {
  writeFileSync(codeFile(stateDir), `${code}\n`, { mode: 0o600 });
}

/** Removes the code once an admin exists; nothing to do when there is none. */
export function discardSetupCode(stateDir: string): void {
  claimSetupCode(stateDir);
}
