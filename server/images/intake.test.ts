// Decompression on the way into the store, with the host's own xz, gzip and zstd.
import { randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { intake, sniffCompression, type Compression } from "./intake.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "hangar-intake-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** A small disk: a boot sector, some data, and mostly zeros, as real disks are. */
function smallDisk(): Buffer {
  const disk = Buffer.alloc(8 * MiB);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  randomBytes(300_000).copy(disk, 1 * MiB);
  randomBytes(5000).copy(disk, 6 * MiB + 123);
  return disk;
}

const compressors: Record<Compression, string[]> = {
  xz: ["xz", "--stdout", "-T1"],
  gzip: ["gzip", "--stdout"],
  zstd: ["zstd", "--stdout", "-q"],
};

async function compressed(kind: Compression, data: Buffer): Promise<string> {
  const [command = "", ...args] = compressors[kind];
  const file = path.join(dir, `${randomBytes(4).toString("hex")}.${kind}`);
  const { stdout } = await execa(command, args, { input: data, encoding: "buffer" });
  await writeFile(file, stdout);
  return file;
}

describe("sniffCompression", () => {
  it.each([
    ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00]],
    ["gzip", [0x1f, 0x8b, 0x08, 0x00]],
    ["zstd", [0x28, 0xb5, 0x2f, 0xfd, 0x04]],
  ] as const)("tells %s by its magic", (kind, bytes) => expect(sniffCompression(Buffer.from(bytes))).toBe(kind));

  it.each([
    ["a qcow2 header", Buffer.from("QFI\xfb\0\0\0\x03", "latin1")],
    ["a raw boot sector", Buffer.alloc(512)],
    ["a truncated xz magic", Buffer.from([0xfd, 0x37, 0x7a])],
    ["bzip2", Buffer.from("BZh91AY", "latin1")],
  ])("leaves %s alone", (_what, head) => expect(sniffCompression(head)).toBeUndefined());
});

describe("intake", () => {
  const disk = smallDisk();

  it.each(["xz", "gzip", "zstd"] as const)("decompresses %s into the same bytes, sparse, and leaves the source as it was", async (kind) => {
    const source = await compressed(kind, disk);
    const before = await readFile(source);
    const target = path.join(dir, `${kind}.out`);
    const result = await intake(createReadStream(source), target, 64 * MiB);
    expect(result).toEqual({ compression: kind, bytes: disk.length });
    expect((await readFile(target)).equals(disk)).toBe(true);
    // Zero blocks are holes: far fewer blocks than the 8 MiB of the disk.
    expect((await stat(target)).blocks * 512).toBeLessThan(2 * MiB);
    expect((await readFile(source)).equals(before)).toBe(true);
  });

  it("decompresses zstd made with --long, whose window is past zstd's default memory limit", async () => {
    const { stdout } = await execa("zstd", ["--stdout", "-q", "--long=31"], { input: disk, encoding: "buffer" });
    const target = path.join(dir, "long.out");
    expect(await intake(Readable.from([Buffer.from(stdout)]), target, 64 * MiB)).toEqual({ compression: "zstd", bytes: disk.length });
    expect((await readFile(target)).equals(disk)).toBe(true);
  });

  it("copies bytes that are not compressed as they are", async () => {
    const target = path.join(dir, "plain.out");
    expect(await intake(Readable.from([disk.subarray(0, 3), disk.subarray(3)]), target, 1)).toEqual({ compression: undefined, bytes: disk.length });
    expect((await readFile(target)).equals(disk)).toBe(true);
  });

  it.each(["xz", "gzip", "zstd"] as const)("refuses %s that decompresses past the cap (a decompression bomb) with a sentence", async (kind) => {
    // 48 MiB of zeros is a few KiB compressed.
    const bomb = await compressed(kind, Buffer.alloc(48 * MiB));
    expect((await stat(bomb)).size).toBeLessThan(MiB);
    const target = path.join(dir, `bomb-${kind}.out`);
    await expect(intake(createReadStream(bomb), target, 8 * MiB)).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: `The ${kind}-compressed image decompresses to more than 8 MiB, the import limit (HANGAR_IMPORT_MAX_BYTES); an admin can raise it.`,
    });
    expect((await stat(target)).size).toBeLessThanOrEqual(8 * MiB);
  });

  it.each(["xz", "gzip", "zstd"] as const)("refuses %s data cut short", async (kind) => {
    const whole = await readFile(await compressed(kind, disk));
    const target = path.join(dir, `cut-${kind}.out`);
    await expect(intake(Readable.from([whole.subarray(0, Math.floor(whole.length / 2))]), target, 64 * MiB)).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringMatching(new RegExp(`^The ${kind}-compressed data is damaged or cut short`)),
    });
  });

  it("blames the host, not the image, when something else ends the tool, and keeps the tool's account", async () => {
    const whole = await readFile(await compressed("zstd", disk));
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* stalled() {
      yield whole.subarray(0, 1000);
      await held;
    }
    // Caught from the start: it fails while the kill below is still being awaited.
    const result = intake(stalled(), path.join(dir, "killed.out"), 64 * MiB).catch((caught: unknown) => caught);
    // The tool is a child of this test's own process: nothing else's zstd is touched.
    let pid = "";
    while (!pid) pid = (await execa("pgrep", ["-P", String(process.pid), "-x", "zstd"], { reject: false })).stdout.trim();
    await execa("kill", ["-KILL", "--", pid]);
    const error: unknown = await result;
    release();
    expect(error).toMatchObject({
      code: "DRIVER_FAILED",
      message: "The host's zstd stopped before it finished decompressing the image; try the import again.",
      cause: { message: expect.stringMatching(/^zstd was ended by SIGKILL/) },
    });
  });

  it("passes on the failure of the source rather than the tool's", async () => {
    const whole = await readFile(await compressed("xz", disk));
    async function* dropped() {
      yield whole.subarray(0, 1000);
      throw new Error("the connection dropped");
    }
    await expect(intake(dropped(), path.join(dir, "dropped.out"), 64 * MiB)).rejects.toThrow("the connection dropped");
  });
});
