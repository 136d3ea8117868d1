/**
 * What a disk file is, decided without letting qemu probe it. qemu's format probe opens the
 * files a header names (a vmdk descriptor's extents, for one), so Hangar reads the magic
 * itself, refuses every format but qcow2 and raw, and only then asks `qemu-img info` with an
 * explicit -f, which reads the header without opening backing or data files.
 */
import { open } from "node:fs/promises";
import { execa } from "execa";
import { z } from "zod";
import { HangarError } from "../errors.ts";

export type DiskFormat = "qcow2" | "raw";

/** Enough of the file's start to find every magic below (btrfs's superblock is at 64 KiB). */
export const HEAD_BYTES = 0x10048;

const text = (s: string) => Buffer.from(s, "latin1");
const at = (head: Buffer, offset: number, magic: Buffer) => head.length >= offset + magic.length && head.subarray(offset, offset + magic.length).equals(magic);

/** Formats qemu knows besides qcow2 and raw, by the magic at the start of the file. */
const OTHER_FORMATS: [string, number, Buffer][] = [
  ["vmdk", 0, text("KDMV")],
  ["vmdk", 0, text("COWD")],
  ["vmdk", 0, text("# Disk DescriptorFile")],
  ["vdi", 0x40, Buffer.from([0x7f, 0x10, 0xda, 0xbe])],
  ["vhdx", 0, text("vhdxfile")],
  ["vpc", 0, text("conectix")],
  ["qed", 0, text("QED\0")],
  ["luks", 0, text("LUKS\xba\xbe")],
  ["parallels", 0, text("WithoutFreeSpace")],
  ["parallels", 0, text("WithouFreSpacExt")],
  ["bochs", 0, text("Bochs Virtual HD Image")],
  ["cloop", 0, text("#!/bin/sh\n#V2.0 Format")],
  ["xz-compressed", 0, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ["gzip-compressed", 0, Buffer.from([0x1f, 0x8b])],
  ["zstd-compressed", 0, Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ["bzip2-compressed", 0, text("BZh")],
];

const QCOW_MAGIC = text("QFI\xfb");

/** qcow2, raw, or the name of a format Hangar refuses. Reads only the bytes given. */
export function sniffFormat(head: Buffer): DiskFormat | { refused: string } {
  if (at(head, 0, QCOW_MAGIC)) {
    const version = head.length >= 8 ? head.readUInt32BE(4) : 0;
    return version === 2 || version === 3 ? "qcow2" : { refused: `qcow (version ${version})` };
  }
  const other = OTHER_FORMATS.find(([, offset, magic]) => at(head, offset, magic));
  return other ? { refused: other[0] } : "raw";
}

/**
 * Whether a raw file looks like a disk rather than, say, a web page: whole 512-byte sectors
 * and a partition table (MBR or GPT) or a file system Linux boots from.
 */
export function plausibleRawDisk(head: Buffer, size: number): boolean {
  if (size === 0 || size % 512 !== 0) return false;
  return (
    (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) || // MBR, FAT boot sector
    at(head, 512, text("EFI PART")) || // GPT
    at(head, 0x8001, text("CD001")) || // ISO 9660
    at(head, 1080, Buffer.from([0x53, 0xef])) || // ext2/3/4
    at(head, 0, text("XFSB")) ||
    at(head, 0x10040, text("_BHRfS_M")) || // btrfs
    at(head, 0, text("hsqs")) // squashfs
  );
}

export async function readHead(file: string): Promise<{ head: Buffer; size: number }> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
    await handle.read(head, 0, head.length, 0);
    return { head, size };
  } finally {
    await handle.close();
  }
}

const qemuImgInfo = z.object({
  format: z.string(),
  "virtual-size": z.number(),
  encrypted: z.boolean().optional(),
  "backing-filename": z.string().optional(),
  "full-backing-filename": z.string().optional(),
  "format-specific": z
    .object({ type: z.string(), data: z.object({ "data-file": z.string().optional() }).loose().optional() })
    .loose()
    .optional(),
});

export interface DiskInfo {
  format: DiskFormat;
  virtualSize: number;
}

/**
 * Inspects a disk Hangar is about to store: refuses other formats, a backing file and an
 * external data file with a sentence (INVALID_INPUT) that names no host path.
 */
export async function inspectDisk(file: string): Promise<DiskInfo> {
  const { head } = await readHead(file);
  const sniffed = sniffFormat(head);
  if (typeof sniffed !== "string") {
    throw new HangarError("INVALID_INPUT", `The image is in ${sniffed.refused} format; Hangar imports qcow2 and raw disks only. Convert it to qcow2 first.`);
  }
  const unreadable = new HangarError("INVALID_INPUT", `qemu-img could not read the image's header; it is not a valid ${sniffed} disk.`);
  const result = await execa("qemu-img", ["info", "-f", sniffed, "--output=json", "--", file], { timeout: 60_000, reject: false });
  if (result.exitCode !== 0) throw unreadable;
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw unreadable;
  }
  const parsed = qemuImgInfo.safeParse(json);
  if (!parsed.success || parsed.data.format !== sniffed) throw unreadable;
  const info = parsed.data;
  if (info["backing-filename"] !== undefined || info["full-backing-filename"] !== undefined) {
    throw new HangarError(
      "INVALID_INPUT",
      "The image names a backing file; Hangar imports only self-contained disks. Flatten it first (qemu-img convert -O qcow2).",
    );
  }
  if (info["format-specific"]?.data?.["data-file"] !== undefined) {
    throw new HangarError(
      "INVALID_INPUT",
      "The image keeps its data in an external data file; Hangar imports only self-contained disks. Convert it first (qemu-img convert -O qcow2).",
    );
  }
  if (info.encrypted) throw new HangarError("INVALID_INPUT", "The image is encrypted; import an unencrypted disk.");
  return { format: sniffed, virtualSize: info["virtual-size"] };
}
