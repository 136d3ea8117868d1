/**
 * The base-image cache (the seed's "deps cache"): images imported from a file under the
 * images directory or streamed from an http(s) URL, hashed (sha256), kept read-only.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, copyFile, link, mkdir, readFile, realpath, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { execa } from "execa";
import type { Db } from "../db.ts";
import type { Firmware } from "../driver/manager.ts";
import { HangarError, errorMessage } from "../errors.ts";
import { detectFirmware } from "./firmware.ts";

export interface ImportInput {
  name: string;
  path?: string;
  url?: string;
  sha256?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Absent: detected from the disk. */
  firmware?: Firmware;
}

export const BUILTIN_IMAGE = "hangar-tiny";

export function createImages({ db, imagesDir, log = () => undefined }: { db: Db; imagesDir: string; log?: (m: string) => void }) {
  /** `candidate`, resolved through symlinks, must be a regular file under the images dir. */
  async function fileUnderImagesDir(what: string, candidate: string): Promise<string> {
    const root = await realpath(imagesDir).catch(() => path.resolve(imagesDir));
    const resolved = await realpath(path.resolve(root, candidate)).catch(() => undefined);
    if (!resolved) throw new HangarError("INVALID_INPUT", `The ${what} "${candidate}" does not exist under ${root}.`);
    if (!resolved.startsWith(`${root}${path.sep}`)) {
      throw new HangarError("INVALID_INPUT", `The ${what} must be a file under ${root}; put it there first.`);
    }
    if (!(await stat(resolved)).isFile()) throw new HangarError("INVALID_INPUT", `The ${what} "${candidate}" is not a regular file.`);
    return resolved;
  }

  async function diskFormat(file: string): Promise<"qcow2" | "raw"> {
    const { stdout } = await execa("qemu-img", ["info", "--output=json", "--", file]);
    const format = (JSON.parse(stdout) as { format?: string }).format;
    if (format !== "qcow2" && format !== "raw") {
      throw new HangarError("INVALID_INPUT", `Image format "${format ?? "unknown"}" is not supported; use qcow2 or raw.`);
    }
    return format;
  }

  async function sha256Of(file: string): Promise<string> {
    const hash = createHash("sha256");
    await pipeline(createReadStream(file), hash);
    return hash.digest("hex");
  }

  /** Moves (or links) a verified file to images/<sha256>.<format>, read-only. */
  async function store(source: string, sha256: string, format: string, move: boolean): Promise<string> {
    const target = path.join(imagesDir, `${sha256}.${format}`);
    if (await stat(target).then(() => true, () => false)) {
      if (move) await rm(source, { force: true });
      return target;
    }
    if (move) await rename(source, target);
    else await link(source, target).catch(() => copyFile(source, target));
    await chmod(target, 0o444);
    return target;
  }

  async function assertNameFree(name: string): Promise<void> {
    if (await db.image.findUnique({ where: { name } })) {
      throw new HangarError("ALREADY_EXISTS", `An image named "${name}" already exists; pick another name.`);
    }
  }

  async function importImage(input: ImportInput) {
    if (Boolean(input.path) === Boolean(input.url)) throw new HangarError("INVALID_INPUT", "Give either a path or a url, not both.");
    await assertNameFree(input.name);
    await mkdir(imagesDir, { recursive: true });
    const kernel = input.kernel ? await fileUnderImagesDir("kernel", input.kernel) : undefined;
    const initrd = input.initrd ? await fileUnderImagesDir("initrd", input.initrd) : undefined;
    if (input.initrd && !input.kernel) throw new HangarError("INVALID_INPUT", "An initrd needs a kernel too.");
    const boot = { kernel: kernel ?? null, initrd: initrd ?? null, cmdline: kernel ? (input.cmdline ?? "console=ttyS0") : null };

    if (input.path) {
      const file = await fileUnderImagesDir("image", input.path);
      const format = await diskFormat(file);
      const sha256 = await sha256Of(file);
      if (input.sha256 && input.sha256.toLowerCase() !== sha256) {
        throw new HangarError("INVALID_INPUT", `The file's sha256 is ${sha256}, not ${input.sha256}; check the file or the sum.`);
      }
      const stored = await store(file, sha256, format, false);
      const { size } = await stat(stored);
      const firmware = input.firmware ?? (await detectFirmware(stored, format));
      return db.image.create({
        data: { name: input.name, path: stored, format, sha256, sizeBytes: BigInt(size), progress: BigInt(size), status: "ready", firmware, ...boot },
      });
    }

    const url = new URL(input.url ?? "");
    const image = await db.image.create({
      data: { name: input.name, path: "", status: "importing", ...boot },
    });
    void download(image.id, url, input.sha256?.toLowerCase(), input.firmware);
    return image;
  }

  async function download(imageId: string, url: URL, expected: string | undefined, firmware: Firmware | undefined): Promise<void> {
    const partial = path.join(imagesDir, `.import-${imageId}.part`);
    try {
      const response = await fetch(url, { redirect: "follow" });
      if (!response.ok || !response.body) throw new Error(`the server answered ${response.status} ${response.statusText}`);
      const total = Number(response.headers.get("content-length") ?? 0);
      await db.image.update({ where: { id: imageId }, data: { sizeBytes: BigInt(total) } });
      const hash = createHash("sha256");
      let received = 0;
      let reported = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          received += chunk.length;
          if (received - reported > 4 * 1024 * 1024) {
            reported = received;
            void db.image.update({ where: { id: imageId }, data: { progress: BigInt(received) } }).catch(() => undefined);
          }
          callback(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), meter, createWriteStream(partial, { mode: 0o600 }));
      const sha256 = hash.digest("hex");
      if (expected && expected !== sha256) throw new Error(`sha256 is ${sha256}, expected ${expected}`);
      const format = await diskFormat(partial);
      const stored = await store(partial, sha256, format, true);
      await db.image.update({
        where: { id: imageId },
        data: { path: stored, format, sha256, firmware: firmware ?? (await detectFirmware(stored, format)), status: "ready", progress: BigInt(received), sizeBytes: BigInt(received) },
      });
      log(`image ${imageId} imported from ${url.host} (${received} bytes)`);
    } catch (error) {
      await rm(partial, { force: true });
      await db.image.update({ where: { id: imageId }, data: { status: "failed", error: `Import failed: ${errorMessage(error)}` } }).catch(() => undefined);
      log(`image ${imageId} import failed: ${errorMessage(error)}`);
    }
  }

  /**
   * Registers the tiny guest built by scripts/build-guest.sh (disk, kernel, initrd,
   * cmdline in `dir`) as the built-in image, or updates its paths.
   */
  async function ensureBuiltinImage(dir: string) {
    const disk = path.join(dir, "disk.qcow2");
    if (!(await stat(disk).then(() => true, () => false))) return undefined;
    const cmdline = (await readFile(path.join(dir, "cmdline"), "utf8")).trim();
    const data = {
      path: disk,
      format: "qcow2",
      kernel: path.join(dir, "vmlinuz"),
      initrd: path.join(dir, "initrd.img"),
      cmdline,
      status: "ready",
      sha256: await sha256Of(disk),
      sizeBytes: BigInt((await stat(disk)).size),
    };
    return db.image.upsert({ where: { name: BUILTIN_IMAGE }, create: { name: BUILTIN_IMAGE, ...data }, update: data });
  }

  return { importImage, ensureBuiltinImage, fileUnderImagesDir };
}
