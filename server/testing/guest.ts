/** Helpers for tests that boot the real tiny guest. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LoginOptions, Manager, ShellResult } from "../driver/manager.ts";

/**
 * Runs `command` over SSH (as Hangar's own account unless `login` says otherwise) until the
 * guest answers (it boots in a few seconds under TCG).
 */
export async function sshWhenReady(driver: Manager, sshPort: number, command: string[], timeoutMs = 90_000, login: LoginOptions = {}): Promise<ShellResult> {
  const { privateKeyFile } = await driver.identity();
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await driver.shell(command, sshPort, privateKeyFile, { ...login, timeoutMs: 15_000 });
    } catch (error) {
      last = error;
      await sleep(250);
    }
  }
  const tail = await driver.serialTail(4000);
  throw new Error(`SSH did not answer within ${timeoutMs} ms: ${String(last)}\n--- serial ---\n${tail}`);
}

/** The tiny guest's kernel, initrd and command line in `guestDir` (scripts/build-guest.sh), for direct boot. */
export function tinyGuestBoot(guestDir: string) {
  return {
    kernel: path.join(guestDir, "vmlinuz"),
    initrd: path.join(guestDir, "initrd.img"),
    cmdline: readFileSync(path.join(guestDir, "cmdline"), "utf8").trim(),
  };
}
