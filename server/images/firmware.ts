/**
 * Which firmware an imported disk boots with, read from its first sectors: an EFI system
 * partition and no boot code in the MBR means UEFI only; anything else boots through BIOS
 * (hybrid images such as Debian's and Ubuntu's cloud images carry both and boot either way).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { Firmware } from "../driver/manager.ts";

const SECTOR = 512;
/** The MBR and a GPT with its usual 128 entries of 128 bytes (LBA 0 to 33). */
export const HEAD_SECTORS = 34;
/** C12A7328-F81F-11D2-BA4B-00A0C93EC93B as stored on disk (first three fields little-endian). */
const ESP_TYPE = Buffer.from("28732ac11ff8d211ba4b00a0c93ec93b", "hex");
const MBR_ESP_TYPE = 0xef;

/** Pure: the firmware the first HEAD_SECTORS sectors of a disk call for. */
export function firmwareFromHead(head: Buffer): Firmware {
  if (head.length < 2 * SECTOR || head.readUInt16LE(510) !== 0xaa55) return "bios";
  const hasBootCode = head.subarray(0, 440).some((byte) => byte !== 0);
  return hasEfiSystemPartition(head) && !hasBootCode ? "uefi" : "bios";
}

function hasEfiSystemPartition(head: Buffer): boolean {
  if (head.toString("latin1", SECTOR, SECTOR + 8) === "EFI PART") {
    const entriesLba = Number(head.readBigUInt64LE(SECTOR + 72));
    const count = head.readUInt32LE(SECTOR + 80);
    const size = head.readUInt32LE(SECTOR + 84);
    if (size < 16) return false;
    for (let i = 0; i < count; i++) {
      const offset = entriesLba * SECTOR + i * size;
      if (offset + 16 > head.length) break;
      if (head.subarray(offset, offset + 16).equals(ESP_TYPE)) return true;
    }
    return false;
  }
  // An MBR partition table: four entries of 16 bytes from offset 446, the type at byte 4.
  for (let i = 0; i < 4; i++) {
    if (head[446 + i * 16 + 4] === MBR_ESP_TYPE) return true;
  }
  return false;
}

/** Reads the head of `file` (qcow2 or raw) through qemu-img and decides its firmware. */
export async function detectFirmware(file: string, format: "qcow2" | "raw"): Promise<Firmware> {
  const work = await mkdtemp(path.join(os.tmpdir(), "hangar-head-"));
  try {
    const out = path.join(work, "head.raw");
    await execa("qemu-img", ["dd", "-f", format, "-O", "raw", `bs=${SECTOR}`, `count=${HEAD_SECTORS}`, `if=${file}`, `of=${out}`]);
    return firmwareFromHead(await readFile(out));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
