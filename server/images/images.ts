/**
 * The base-image cache (the seed's "deps cache"): disks imported from a file under the images
 * directory or streamed from an http(s) URL, kernels and initrds beside them. Everything
 * enters the store as a copy keyed by the sha256 of what was given, read-only; a disk only
 * through `qemu-img convert` to qcow2, so no header field of the given file (a backing file,
 * a data file) survives; a compressed one is decompressed first (intake.ts). The given file
 * is only ever read.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { z } from "zod";
import type { Db } from "../db.ts";
import type { Firmware } from "../driver/manager.ts";
import { HangarError, errorMessage, isHangarError, isUniqueViolation } from "../errors.ts";
import { parseAllowList, type AddressPolicy } from "./address-policy.ts";
import { inspectDisk, plausibleRawDisk, readHead } from "./disk-format.ts";
import { ImportFailure, checkedAddress, download, type FetchLimits } from "./fetch.ts";
import { intake } from "./intake.ts";
import { isIso9660 } from "./iso.ts";
import { detectFirmware } from "./firmware.ts";
import { BUILTIN_IMAGE } from "../../lib/vocabulary.ts";

type ImageRow = NonNullable<Awaited<ReturnType<Db["image"]["findUnique"]>>>;

export interface ImportInput {
  name: string;
  path?: string;
  url?: string;
  sha256?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** The account Hangar logs in as; default "hangar". */
  loginUser?: string;
  /** Absent: detected from the disk. */
  firmware?: Firmware;
}

export interface ImportSettings {
  /** Host names and CIDRs URL imports may reach although they are internal (HANGAR_IMPORT_ALLOW). */
  allow: string[];
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxBytes: number;
}

export const DEFAULT_IMPORT_SETTINGS: ImportSettings = {
  allow: [],
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxBytes: 64 * 1024 ** 3,
};

/** An import or a publish that a restart cut short: the row says so, and the same name takes a new try. */
const INTERRUPTED = "Hangar restarted while this image was being made; import or publish it again under this name.";

/** Network and TLS failures, named by their code: they say what went wrong and name no file. */
const CONNECTION_CODES =
  /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN|ENOTFOUND|ERR_TLS_\w+|CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HPE_\w+)$/;

/** A message for the caller and the image row: ours as they are, anything else by reference. */
function callerMessage(error: unknown, log: (m: string) => void): string {
  if (isHangarError(error) || error instanceof ImportFailure) return error.message;
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  if (CONNECTION_CODES.test(code)) return `the connection failed (${code})`;
  const reference = randomBytes(4).toString("hex");
  log(`internal error ${reference} during an image import: ${errorMessage(error)}`);
  return `internal error ${reference}; the server log has the details`;
}

/** How far an import gets between two progress writes. */
const PROGRESS_STEP = 4 * 1024 * 1024;

/** `source`, passing each chunk to `see` on the way (hashing, progress). */
async function* tap(source: AsyncIterable<Buffer>, see: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    see(chunk);
    yield chunk;
  }
}

/** Remembered sha256 sums, by file identity (path, inode, size, mtime), kept in the images dir. */
const hashCache = z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/));
const HASH_CACHE = ".sha256-cache.json";

export function createImages({
  db,
  imagesDir,
  log = () => undefined,
  settings = DEFAULT_IMPORT_SETTINGS,
  onStored = async () => undefined,
  hostId = async () => undefined,
  hostOnline = async () => true,
}: {
  db: Db;
  imagesDir: string;
  log?: (m: string) => void;
  settings?: ImportSettings;
  /** Called once an image's files are in this host's store (copies.ts records the copy). */
  onStored?: (imageId: string) => Promise<void>;
  /** This host's id, where several hosts share the database: an import is recorded as this host's. */
  hostId?: () => Promise<string | undefined>;
  /** Whether the host with this id beats (runs its imports); by default every host does. */
  hostOnline?: (hostId: string) => Promise<boolean>;
}) {
  const policy: AddressPolicy = parseAllowList(settings.allow);
  const limits: FetchLimits = {
    policy,
    connectTimeoutMs: settings.connectTimeoutMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    maxBytes: settings.maxBytes,
    maxRedirects: 5,
  };
  /** Background URL imports, by image id: tests and shutdown wait for them. */
  const running = new Map<string, Promise<void>>();
  /** Every import this process is running, path imports included. */
  const active = new Set<string>();

  /** `candidate`, resolved through symlinks, must be a regular file under the images dir. */
  async function fileUnderImagesDir(what: string, candidate: string): Promise<string> {
    const root = await realpath(imagesDir).catch(() => path.resolve(imagesDir));
    const resolved = await realpath(path.resolve(root, candidate)).catch(() => undefined);
    if (!resolved) {
      // Named back only when it is a plain file name: a path given may spell anything.
      const named = /^[\w.+-]{1,100}$/.test(candidate) ? ` "${candidate}"` : " at that path";
      throw new HangarError("INVALID_INPUT", `There is no ${what}${named} under the images directory; check the name.`);
    }
    if (!resolved.startsWith(`${root}${path.sep}`)) {
      throw new HangarError("INVALID_INPUT", `The ${what} must be a file under the images directory; put it there first.`);
    }
    if (!(await stat(resolved)).isFile()) throw new HangarError("INVALID_INPUT", `The ${what} "${candidate}" is not a regular file.`);
    return resolved;
  }

  const partialPrefix = (imageId: string) => `.import-${imageId}.`;
  const partial = (imageId: string, what: string) => path.join(imagesDir, `${partialPrefix(imageId)}${what}.part`);
  const exists = (file: string) =>
    stat(file).then(
      () => true,
      () => false,
    );

  /** Writes an import's progress (bytes of the given file so far) to its row, every few MiB. */
  function progressReporter(imageId: string): (bytes: number) => void {
    let reported = 0;
    return (bytes) => {
      if (bytes - reported < PROGRESS_STEP) return;
      reported = bytes;
      void db.image.update({ where: { id: imageId }, data: { progress: BigInt(bytes) } }).catch(() => undefined);
    };
  }

  /** Reads `source` into `target` (0600) and returns its sha256; the source is only opened for reading. */
  async function copyHashing(source: string, target: string): Promise<string> {
    const hash = createHash("sha256");
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    await pipeline(createReadStream(source), tee, createWriteStream(target, { mode: 0o600 }));
    return hash.digest("hex");
  }

  let knownHashes: Promise<Record<string, string>> | undefined;

  /**
   * The sha256 of a file Hangar did not receive through an import (the built-in guest), hashed
   * once per content: start-up reads the remembered sum while the file is unchanged.
   */
  async function sha256Of(file: string): Promise<string> {
    const { dev, ino, size, mtimeMs } = await stat(file);
    const key = `${file}:${dev}:${ino}:${size}:${mtimeMs}`;
    knownHashes ??= readFile(path.join(imagesDir, HASH_CACHE), "utf8").then(
      (text) => {
        try {
          const parsed = hashCache.safeParse(JSON.parse(text));
          return parsed.success ? parsed.data : {};
        } catch {
          return {};
        }
      },
      () => ({}),
    );
    const known = await knownHashes;
    const remembered = known[key];
    if (remembered) return remembered;
    const hash = createHash("sha256");
    await pipeline(createReadStream(file), hash);
    const sha = hash.digest("hex");
    known[key] = sha;
    const temporary = path.join(imagesDir, `${HASH_CACHE}.${randomBytes(4).toString("hex")}`);
    await writeFile(temporary, JSON.stringify(known), { mode: 0o600 });
    await rename(temporary, path.join(imagesDir, HASH_CACHE));
    return sha;
  }

  /** Moves a private copy to images/<sha256>.<ext>, read-only, unless that is there already. */
  async function settle(copy: string, sha256: string, ext: string): Promise<string> {
    const target = path.join(imagesDir, `${sha256}.${ext}`);
    if (await exists(target)) {
      await rm(copy, { force: true });
      return target;
    }
    await chmod(copy, 0o444);
    await rename(copy, target);
    return target;
  }

  /**
   * Checks a private copy of a disk and converts it into images/<sha256>.qcow2; `raw` must look
   * be whole sectors, and look like a disk when `requireDisk` (URL imports: a web page is not one). An ISO9660 image (an
   * installer for a CD-ROM drive) stays raw, as images/<sha256>.iso: it has no header that
   * could name a file, and the drive reads it as it is.
   */
  async function storeDisk(copy: string, sha256: string, requireDisk: boolean): Promise<{ path: string; sizeBytes: bigint; format: "qcow2" | "raw" }> {
    try {
      const info = await inspectDisk(copy);
      if (info.format === "raw" && (await isIso9660(copy))) {
        const iso = await settle(copy, sha256, "iso");
        return { path: iso, sizeBytes: BigInt((await stat(iso)).size), format: "raw" };
      }
      if (info.format === "raw") {
        const { head, size } = await readHead(copy);
        if (requireDisk && !plausibleRawDisk(head, size)) {
          throw new HangarError("INVALID_INPUT", "The download is not a disk image: neither qcow2 nor a raw disk with a partition table or file system.");
        }
        // A blank raw disk may hold nothing yet, but it is whole sectors: a text file is not a disk.
        if (size === 0 || size % 512 !== 0) {
          throw new HangarError(
            "INVALID_INPUT",
            "The file is not a disk image: neither qcow2 nor a raw disk (a raw disk is a whole number of 512-byte sectors).",
          );
        }
      }
      const target = path.join(imagesDir, `${sha256}.qcow2`);
      if (!(await exists(target))) {
        const converting = `${copy}.qcow2`;
        try {
          await execa("qemu-img", ["convert", "-q", "-f", info.format, "-O", "qcow2", "--", copy, converting], { timeout: 6 * 3600_000 });
          await settle(converting, sha256, "qcow2");
        } finally {
          await rm(converting, { force: true });
        }
      }
      return { path: target, sizeBytes: BigInt((await stat(target)).size), format: "qcow2" };
    } finally {
      await rm(copy, { force: true });
    }
  }

  /** Copies a kernel or initrd into images/<sha256>.<ext>. */
  async function storeBootFile(imageId: string, source: string, ext: "vmlinuz" | "initrd", knownSha?: string): Promise<string> {
    if (knownSha && (await exists(path.join(imagesDir, `${knownSha}.${ext}`)))) return path.join(imagesDir, `${knownSha}.${ext}`);
    const copy = partial(imageId, ext);
    try {
      return await settle(copy, await copyHashing(source, copy), ext);
    } finally {
      await rm(copy, { force: true });
    }
  }

  /** The image row, in "importing", holding the name: the unique index decides concurrent imports. */
  async function reserve(name: string) {
    const importHostId = (await hostId()) ?? null;
    const create = () => db.image.create({ data: { name, path: "", status: "importing", importHostId } });
    try {
      return await create();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // A failed import leaves its row to show why; importing again under its name replaces it.
      const { count } = await db.image.deleteMany({ where: { name, status: "failed" } });
      if (count === 0) throw new HangarError("ALREADY_EXISTS", `An image named "${name}" already exists; pick another name.`);
      try {
        return await create();
      } catch (again) {
        if (isUniqueViolation(again)) throw new HangarError("ALREADY_EXISTS", `An image named "${name}" already exists; pick another name.`);
        throw again;
      }
    }
  }

  /** Removes the partial files of `imageId`, or of every import this process is not running. */
  async function removePartials(imageId?: string): Promise<void> {
    const names = await readdir(imagesDir).catch(() => [] as string[]);
    const doomed = names.filter((n) =>
      imageId ? n.startsWith(partialPrefix(imageId)) : n.startsWith(".import-") && ![...active].some((id) => n.startsWith(partialPrefix(id))),
    );
    await Promise.all(doomed.map((n) => rm(path.join(imagesDir, n), { force: true })));
  }

  async function importImage(input: ImportInput) {
    if (Boolean(input.path) === Boolean(input.url)) throw new HangarError("INVALID_INPUT", "Give either a path or a url, not both.");
    if (input.initrd && !input.kernel) throw new HangarError("INVALID_INPUT", "An initrd needs a kernel too.");
    if (input.cmdline !== undefined && !input.kernel) {
      throw new HangarError("INVALID_INPUT", "A kernel command line needs a kernel; give the kernel too, or leave the command line out.");
    }
    await mkdir(imagesDir, { recursive: true });
    const kernelSource = input.kernel ? await fileUnderImagesDir("kernel", input.kernel) : undefined;
    const initrdSource = input.initrd ? await fileUnderImagesDir("initrd", input.initrd) : undefined;
    const source: { kind: "file"; file: string } | { kind: "url"; url: URL } = input.path
      ? { kind: "file", file: await fileUnderImagesDir("image", input.path) }
      : { kind: "url", url: new URL(input.url ?? "") };
    // Refused at once rather than as a failed row: the first hop is known now.
    if (source.kind === "url") await checkedAddress(source.url, policy);
    // Default "hangar" (the schema's): the account Hangar's cloud-init user-data creates.
    const login = input.loginUser ? { loginUser: input.loginUser } : {};

    const image = await reserve(input.name);
    active.add(image.id);
    try {
      const kernel = kernelSource ? await storeBootFile(image.id, kernelSource, "vmlinuz") : null;
      const initrd = initrdSource ? await storeBootFile(image.id, initrdSource, "initrd") : null;
      const boot = { kernel, initrd, cmdline: kernel ? (input.cmdline ?? "console=ttyS0") : null };
      if (source.kind === "url") {
        const started = await db.image.update({ where: { id: image.id }, data: { ...boot, ...login } });
        const task = fetchInto(image.id, source.url, input.sha256?.toLowerCase(), input.firmware).finally(() => {
          running.delete(image.id);
          active.delete(image.id);
        });
        running.set(image.id, task);
        return started;
      }
      const copy = partial(image.id, "disk");
      // While it runs, the row shows how much of the given file has been read (and decompressed).
      await db.image.update({ where: { id: image.id }, data: { sizeBytes: BigInt((await stat(source.file)).size) } });
      const hash = createHash("sha256");
      const report = progressReporter(image.id);
      let read = 0;
      await intake(
        tap(createReadStream(source.file), (chunk) => {
          hash.update(chunk);
          read += chunk.length;
          report(read);
        }),
        copy,
        settings.maxBytes,
      );
      const sha256 = hash.digest("hex");
      if (input.sha256 && input.sha256.toLowerCase() !== sha256) {
        throw new HangarError("INVALID_INPUT", `The file's sha256 is ${sha256}, not ${input.sha256}; check the file or the sum.`);
      }
      const stored = await storeDisk(copy, sha256, false);
      await db.image.update({
        where: { id: image.id },
        data: {
          ...boot,
          path: stored.path,
          format: stored.format,
          sha256,
          sizeBytes: stored.sizeBytes,
          progress: BigInt(read),
          status: "ready",
          firmware: input.firmware ?? (await detectFirmware(stored.path, stored.format)),
          ...login,
        },
      });
      await onStored(image.id);
      return await db.image.findUniqueOrThrow({ where: { id: image.id } });
    } catch (error) {
      await removePartials(image.id);
      await db.image.delete({ where: { id: image.id } }).catch(() => undefined);
      if (isHangarError(error)) throw error;
      throw new HangarError("DRIVER_FAILED", `Import failed: ${callerMessage(error, log)}`, { cause: error });
    } finally {
      if (!running.has(image.id)) active.delete(image.id);
    }
  }

  /**
   * An image made from a VM's disk (Incus' publish, Proxmox's template): `writeDisk` writes
   * the disk as one standalone qcow2, which is stored like an import's; the boot files,
   * firmware and login user are the VM's image's. A failure leaves no row and no file; a
   * restart while it runs leaves the row failed, as it does an import's.
   */
  async function publishImage(input: {
    name: string;
    writeDisk: (target: string) => Promise<void>;
    from: Pick<ImageRow, "firmware" | "loginUser" | "kernel" | "initrd" | "cmdline">;
  }) {
    await mkdir(imagesDir, { recursive: true });
    const image = await reserve(input.name);
    active.add(image.id);
    try {
      const copy = partial(image.id, "disk");
      await input.writeDisk(copy);
      const sha256 = await hashOf(copy);
      const stored = await settle(copy, sha256, "qcow2");
      const { from } = input;
      await db.image.update({
        where: { id: image.id },
        data: {
          path: stored,
          format: "qcow2",
          sha256,
          sizeBytes: BigInt((await stat(stored)).size),
          status: "ready",
          firmware: from.firmware,
          loginUser: from.loginUser,
          kernel: from.kernel,
          initrd: from.initrd,
          cmdline: from.cmdline,
        },
      });
      await onStored(image.id);
      return await db.image.findUniqueOrThrow({ where: { id: image.id } });
    } catch (error) {
      await removePartials(image.id);
      await db.image.delete({ where: { id: image.id } }).catch(() => undefined);
      throw error;
    } finally {
      active.delete(image.id);
    }
  }

  async function hashOf(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
  }

  async function fetchInto(imageId: string, url: URL, expected: string | undefined, firmware: Firmware | undefined): Promise<void> {
    const copy = partial(imageId, "disk");
    try {
      const hash = createHash("sha256");
      const report = progressReporter(imageId);
      const received = await download(url, (body) => intake(body, copy, settings.maxBytes), limits, {
        onLength: async (bytes) => {
          await db.image.update({ where: { id: imageId }, data: { sizeBytes: BigInt(bytes) } });
        },
        onChunk: (chunk, total) => {
          hash.update(chunk);
          report(total);
        },
      });
      const sha256 = hash.digest("hex");
      if (expected && expected !== sha256) throw new ImportFailure(`sha256 is ${sha256}, expected ${expected}`);
      const stored = await storeDisk(copy, sha256, true);
      await db.image.update({
        where: { id: imageId },
        data: {
          path: stored.path,
          format: stored.format,
          sha256,
          firmware: firmware ?? (await detectFirmware(stored.path, stored.format)),
          status: "ready",
          progress: BigInt(received),
          sizeBytes: stored.sizeBytes,
        },
      });
      await onStored(imageId);
      log(`image ${imageId} imported from ${url.host} (${received} bytes)`);
    } catch (error) {
      await removePartials(imageId);
      const message = callerMessage(error, log);
      await db.image.update({ where: { id: imageId }, data: { status: "failed", error: `Import failed: ${message}` } }).catch(() => undefined);
      log(`image ${imageId} import failed: ${message}`);
    }
  }

  /** Resolves when the URL import of `imageId` has ended (ready or failed), at once if none runs. */
  async function importSettled(imageId: string): Promise<void> {
    await running.get(imageId);
  }

  /**
   * At start-up: an import that was running when the process ended cannot continue. Its row
   * becomes failed with the reason; partial files of imports no longer running go.
   */
  async function failInterruptedImports(): Promise<number> {
    // Imports other hosts run are theirs: only this host's (and those from before hosts) ended with it.
    const self = await hostId();
    const ours = self ? { OR: [{ importHostId: self }, { importHostId: null }] } : {};
    const stale = await db.image.findMany({ where: { status: "importing", id: { notIn: [...active] }, ...ours }, select: { id: true } });
    for (const { id } of stale) {
      await db.image.updateMany({ where: { id, status: "importing" }, data: { status: "failed", error: INTERRUPTED } });
    }
    await removePartials();
    return stale.length;
  }

  /**
   * Registers the tiny guest built by scripts/build-guest.sh (disk, kernel, initrd, cmdline in
   * `dir`) as the built-in image, its files copied into the store once per content.
   */
  async function ensureBuiltinImage(dir: string) {
    const disk = path.join(dir, "disk.qcow2");
    if (!(await exists(disk))) return undefined;
    await mkdir(imagesDir, { recursive: true });
    const cmdline = (await readFile(path.join(dir, "cmdline"), "utf8")).trim();
    const sha256 = await sha256Of(disk);
    const key = `builtin-${randomBytes(6).toString("hex")}`;
    let stored = path.join(imagesDir, `${sha256}.qcow2`);
    if (!(await exists(stored))) {
      const copy = partial(key, "disk");
      if ((await copyHashing(disk, copy)) !== sha256) {
        await rm(copy, { force: true });
        throw new Error(`the built-in guest's disk changed while it was being stored; run scripts/setup.sh again`);
      }
      stored = (await storeDisk(copy, sha256, false)).path;
    }
    const kernel = await storeBootFile(key, path.join(dir, "vmlinuz"), "vmlinuz", await sha256Of(path.join(dir, "vmlinuz")));
    const initrd = await storeBootFile(key, path.join(dir, "initrd.img"), "initrd", await sha256Of(path.join(dir, "initrd.img")));
    const data = { path: stored, format: "qcow2", kernel, initrd, cmdline, status: "ready", error: null, sha256, sizeBytes: BigInt((await stat(stored)).size) };
    const upsert = () => db.image.upsert({ where: { name: BUILTIN_IMAGE }, create: { name: BUILTIN_IMAGE, ...data }, update: data });
    // Hosts of one cluster starting together each register it: the one that lost the create updates.
    const image = await upsert().catch((error: unknown) => {
      if (!isUniqueViolation(error)) throw error;
      return upsert();
    });
    await onStored(image.id);
    return db.image.findUniqueOrThrow({ where: { id: image.id } });
  }

  /** What uses an image: VMs on it (or with it in their CD-ROM drive) and pools. */
  async function usersOf(imageId: string) {
    const [vms, pools] = await Promise.all([
      db.vm.findMany({ where: { OR: [{ imageId }, { cdromImageId: imageId }] }, select: { id: true, name: true, state: true }, orderBy: { name: "asc" } }),
      db.pool.findMany({ where: { imageId }, select: { id: true, name: true }, orderBy: { name: "asc" } }),
    ]);
    return { vms, pools };
  }

  /**
   * Deletes an image nothing uses, and its files in the store unless another image row has
   * the same content. The built-in image comes back at the next start, so it stays.
   */
  async function deleteImage(imageId: string) {
    const image = await db.image.findUnique({ where: { id: imageId } });
    if (!image) throw new HangarError("NOT_FOUND", `No image with id "${imageId}".`);
    if (image.name === BUILTIN_IMAGE)
      throw new HangarError("INVALID_INPUT", `${BUILTIN_IMAGE} is built in; it comes back at every start, so it cannot be deleted.`);
    // An import whose host went offline for good would hold its name forever: it may go.
    if (image.status === "importing" && (!image.importHostId || (await hostOnline(image.importHostId)))) {
      throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" is still importing; wait until it is ready or failed.`);
    }
    const users = await usersOf(imageId);
    const inUse = [...users.vms.map((vm) => `VM ${vm.name}`), ...users.pools.map((pool) => `pool ${pool.name}`)];
    if (inUse.length > 0) {
      const shown = inUse.slice(0, 5).join(", ") + (inUse.length > 5 ? ` and ${inUse.length - 5} more` : "");
      throw new HangarError("IMAGE_IN_USE", `Image "${image.name}" is used by ${shown}; delete those first.`);
    }
    try {
      await db.image.delete({ where: { id: imageId } });
    } catch (error) {
      // A VM or pool made on it since the check above: the database's foreign keys refuse.
      throw new HangarError("IMAGE_IN_USE", `Image "${image.name}" came into use meanwhile; delete what uses it first.`, { cause: error });
    }
    for (const file of [image.path, image.kernel, image.initrd]) {
      if (!file || path.dirname(file) !== path.resolve(imagesDir)) continue;
      const shared = await db.image.count({ where: { OR: [{ path: file }, { kernel: file }, { initrd: file }] } });
      if (shared === 0) await rm(file, { force: true });
    }
    log(`image ${image.name} deleted`);
    return { id: imageId };
  }

  return { importImage, publishImage, importSettled, failInterruptedImports, ensureBuiltinImage, fileUnderImagesDir, deleteImage, usersOf };
}
