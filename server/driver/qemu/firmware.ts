/**
 * Where this host keeps OVMF, the UEFI firmware for qemu: a code file (read-only, shared) and
 * the template of the variable store each VM gets its own copy of. scripts/setup.sh installs
 * Debian's `ovmf` package.
 */
import { access } from "node:fs/promises";
import { HostToolMissingError } from "../manager.ts";

export interface OvmfFiles {
  code: string;
  varsTemplate: string;
}

/** Code and variable template come in pairs of the same flash size; first found wins. */
const CANDIDATES: OvmfFiles[] = [
  // Debian and Ubuntu (`ovmf`): the 4 MiB layout.
  { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd" },
  // Older Debian and Ubuntu: the 2 MiB layout.
  { code: "/usr/share/OVMF/OVMF_CODE.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS.fd" },
  // Fedora and derivatives (`edk2-ovmf`).
  { code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", varsTemplate: "/usr/share/edk2/ovmf/OVMF_VARS.fd" },
];

let found: Promise<OvmfFiles | undefined> | undefined;

/** The host's OVMF files; throws HostToolMissingError when there are none. */
export async function findOvmf(): Promise<OvmfFiles> {
  found ??= (async () => {
    for (const candidate of CANDIDATES) {
      const present = await Promise.all([access(candidate.code), access(candidate.varsTemplate)]).then(
        () => true,
        () => false,
      );
      if (present) return candidate;
    }
    return undefined;
  })();
  const files = await found;
  if (!files) {
    found = undefined;
    throw new HostToolMissingError("UEFI firmware (OVMF) is not installed on this host; install the ovmf package or use BIOS firmware.");
  }
  return files;
}
