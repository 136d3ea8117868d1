/**
 * The Debian 12 cloud guest for tests, built by scripts/build-debian-guest.sh from Debian's
 * packages and cached by its stamp. Outside the checkout, so a fresh clone (as CI makes)
 * finds the build of an earlier run.
 */
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { REPO_ROOT } from "./paths.ts";

const cacheHome = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache");

export const debianGuestDir = path.resolve(process.env.HANGAR_DEBIAN_GUEST_DIR ?? path.join(cacheHome, "hangar", "debian-12"));

/** Its disk (qcow2, GRUB for UEFI and BIOS, no kernel given). */
export const debianGuestDisk = path.join(debianGuestDir, "disk.qcow2");

/** Builds the guest unless the cached build's stamp matches: cold about ten minutes, then at once. */
export async function buildDebianGuest(): Promise<void> {
  await execa("bash", [path.join(REPO_ROOT, "scripts", "build-debian-guest.sh"), debianGuestDir], { stdio: "inherit" });
}

/** The timeout for a hook that may build it cold. */
export const DEBIAN_BUILD_TIMEOUT_MS = 40 * 60_000;
