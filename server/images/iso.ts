/** Telling an ISO9660 image (a CD or DVD: installers) from a raw disk image. */
import { open } from "node:fs/promises";

/** The primary volume descriptor's "CD001" sits at byte 32769 (sector 16, after its type byte). */
const ISO9660_MAGIC_OFFSET = 16 * 2048 + 1;

/** True when `file` is an ISO9660 filesystem image. */
export async function isIso9660(file: string): Promise<boolean> {
  const handle = await open(file, "r").catch(() => undefined);
  if (!handle) return false;
  try {
    const magic = Buffer.alloc(5);
    const { bytesRead } = await handle.read(magic, 0, magic.length, ISO9660_MAGIC_OFFSET);
    return bytesRead === magic.length && magic.toString("latin1") === "CD001";
  } finally {
    await handle.close();
  }
}
