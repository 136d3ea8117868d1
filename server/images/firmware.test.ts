import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { HEAD_SECTORS, detectFirmware, firmwareFromHead } from "./firmware.ts";

const ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649";

/** A GUID as GPT stores it: the first three fields little-endian. */
function guidBytes(guid: string): Buffer {
  const hex = guid.replaceAll("-", "");
  const swap = (s: string) => Buffer.from(s, "hex").reverse();
  return Buffer.concat([swap(hex.slice(0, 8)), swap(hex.slice(8, 12)), swap(hex.slice(12, 16)), Buffer.from(hex.slice(16), "hex")]);
}

/** The first sectors of a disk: protective MBR (optionally with boot code) and GPT entries of the given types. */
function gptHead(types: string[], bootCode: boolean): Buffer {
  const head = Buffer.alloc(HEAD_SECTORS * 512);
  if (bootCode) head.fill(0xeb, 0, 2);
  head[446 + 4] = 0xee;
  head.writeUInt16LE(0xaa55, 510);
  head.write("EFI PART", 512, "latin1");
  head.writeBigUInt64LE(2n, 512 + 72);
  head.writeUInt32LE(128, 512 + 80);
  head.writeUInt32LE(128, 512 + 84);
  types.forEach((type, i) => guidBytes(type).copy(head, 1024 + i * 128));
  return head;
}

function mbrHead(partitionType: number, bootCode: boolean): Buffer {
  const head = Buffer.alloc(HEAD_SECTORS * 512);
  if (bootCode) head.fill(0xfa, 0, 1);
  head[446 + 16 + 4] = partitionType;
  head.writeUInt16LE(0xaa55, 510);
  return head;
}

describe("firmwareFromHead", () => {
  const cases: [string, Buffer, "bios" | "uefi"][] = [
    ["GPT with an ESP and no boot code (UEFI-only cloud image)", gptHead([LINUX, ESP], false), "uefi"],
    ["GPT with an ESP and GRUB's boot code (hybrid, as Debian's)", gptHead([LINUX, BIOS_BOOT, ESP], true), "bios"],
    ["GPT without an ESP", gptHead([BIOS_BOOT, LINUX], true), "bios"],
    ["MBR with an EFI partition and no boot code", mbrHead(0xef, false), "uefi"],
    ["MBR with a Linux partition and boot code (syslinux)", mbrHead(0x83, true), "bios"],
    ["no partition table (a bare filesystem)", Buffer.alloc(HEAD_SECTORS * 512), "bios"],
    ["a file shorter than two sectors", Buffer.alloc(100), "bios"],
  ];
  it.each(cases)("%s", (_label, head, expected) => {
    expect(firmwareFromHead(head)).toBe(expected);
  });
});

describe("detectFirmware", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "hangar-firmware-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("reads the head of a qcow2 through qemu-img", async () => {
    const raw = path.join(work, "uefi.raw");
    writeFileSync(raw, Buffer.concat([gptHead([LINUX, ESP], false), Buffer.alloc(1024 * 1024)]));
    const qcow2 = path.join(work, "uefi.qcow2");
    await execa("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", "--", raw, qcow2]);
    expect(await detectFirmware(qcow2, "qcow2")).toBe("uefi");
    expect(await detectFirmware(raw, "raw")).toBe("uefi");
  });
});
