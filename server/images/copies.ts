/**
 * Images across hosts. Every file in a store is named by content (`<sha256>.<ext>`), so an
 * image row's paths say only which file, never where: each host takes the name and looks in
 * its own store. ImageCopy rows record which hosts hold an image's files. A host that must
 * make or start a VM on an image it lacks fetches the files from a host that holds them, by
 * name, over HTTP between Hangar processes (the internal route below, which answers only a
 * request carrying a pass signed with the cluster key), checks each file's sha256, and keeps
 * it read-only in its own store.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { CLUSTER_HEADER, issuePass, verifyPass } from "../auth/cluster-secret.ts";
import { downloadFromPeer } from "../cluster/peer-download.ts";
import type { Db } from "../db.ts";
import { HangarError, errorMessage } from "../errors.ts";

/** Where a host serves its store's files to its peers: GET /internal/images/<sha256>.<ext>. */
export const INTERNAL_IMAGES_PATH = "/internal/images/";

/** A store file's name: its content's sha256 (or, for a converted disk, its source's) and its kind. */
const STORE_NAME = /^([0-9a-f]{64})\.(qcow2|iso|vmlinuz|initrd)$/;

/** The store name of a file an image row names, or undefined for anything else. */
export function storeName(file: string): string | undefined {
  const name = path.basename(file);
  return STORE_NAME.test(name) ? name : undefined;
}

/**
 * A store file no image names is left this long before it is removed: an import or a fetch
 * writes its file (its modification time moves all along) just before its row names it.
 */
const ORPHAN_AFTER_MS = 10 * 60_000;

const passPurpose = (name: string) => `image:${name}`;

/** The files of an image in this host's store. */
export interface LocalImage {
  path: string;
  kernel: string | null;
  initrd: string | null;
}

/** What of an image row the copies need. */
export interface ImageFiles {
  id: string;
  name: string;
  path: string;
  kernel: string | null;
  initrd: string | null;
  storedSha256: string | null;
}

export interface CopiesOptions {
  db: Db;
  imagesDir: string;
  hostId: () => Promise<string>;
  clusterKey: Buffer;
  log?: (message: string) => void;
  /** A fetch fails when a peer sends nothing for this long. */
  idleTimeoutMs?: number;
}

export type ImageCopies = ReturnType<typeof createImageCopies>;

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

export function createImageCopies({ db, imagesDir, hostId, clusterKey, log = () => undefined, idleTimeoutMs = 60_000 }: CopiesOptions) {
  /** Fetches under way, by store name: two VMs on one missing image fetch it once. */
  const fetching = new Map<string, Promise<void>>();
  const exists = (file: string) =>
    stat(file).then(
      (s) => s.isFile(),
      () => false,
    );

  function localFile(image: { name: string }, file: string): { name: string; local: string } {
    const name = storeName(file);
    if (!name) throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" has a file that is not in an image store; import it again.`);
    return { name, local: path.join(imagesDir, name) };
  }

  /** The files an image needs, each with the sha256 its content must have. */
  function filesOf(image: ImageFiles): { name: string; local: string; sha256: string | undefined }[] {
    const disk = localFile(image, image.path);
    // A converted disk is named by its source's sum; the stored file's own is in the row.
    const diskSha = disk.name.endsWith(".qcow2") ? (image.storedSha256 ?? undefined) : disk.name.slice(0, 64);
    const boot = [image.kernel, image.initrd].flatMap((file) => (file ? [localFile(image, file)] : []));
    return [{ ...disk, sha256: diskSha }, ...boot.map((f) => ({ ...f, sha256: f.name.slice(0, 64) }))];
  }

  /**
   * Records that this host holds `imageId`'s files (after an import, or found at start-up),
   * and the stored disk's sha256 where the row lacks it.
   */
  async function recordLocal(imageId: string): Promise<void> {
    const image = await db.image.findUnique({ where: { id: imageId } });
    if (!image || image.status !== "ready") return;
    const files = filesOf(image);
    for (const file of files) if (!(await exists(file.local))) return;
    const disk = files[0];
    if (disk && !image.storedSha256) await db.image.update({ where: { id: imageId }, data: { storedSha256: await sha256OfFile(disk.local) } });
    const self = await hostId();
    await db.imageCopy.upsert({ where: { imageId_hostId: { imageId, hostId: self } }, create: { imageId, hostId: self }, update: {} });
  }

  /** At start-up: the copies this host holds are recorded, and those it no longer holds are not. */
  async function registerStore(): Promise<void> {
    const self = await hostId();
    for (const image of await db.image.findMany({ where: { status: "ready" }, select: { id: true } })) {
      await recordLocal(image.id).catch((error: unknown) => log(`image ${image.id}: its copy on this host could not be recorded: ${errorMessage(error)}`));
    }
    const recorded = await db.imageCopy.findMany({ where: { hostId: self }, include: { image: true } });
    for (const copy of recorded) {
      const present = await Promise.all(filesOf(copy.image).map((file) => exists(file.local))).catch(() => [false]);
      if (present.includes(false)) await db.imageCopy.deleteMany({ where: { imageId: copy.imageId, hostId: self } });
    }
  }

  /** Streams `name` from `apiAddress` into the store, checking its sha256. */
  async function fetchFrom(apiAddress: string, name: string, sha256: string): Promise<void> {
    await mkdir(imagesDir, { recursive: true });
    const part = path.join(imagesDir, `.fetch-${randomBytes(6).toString("hex")}.${name}.part`);
    const hash = createHash("sha256");
    try {
      await downloadFromPeer(new URL(`${INTERNAL_IMAGES_PATH}${name}`, apiAddress), issuePass(clusterKey, passPurpose(name)), part, {
        idleTimeoutMs,
        onChunk: (chunk) => hash.update(chunk),
      });
      const got = hash.digest("hex");
      if (got !== sha256) throw new Error(`what arrived has sha256 ${got}, not ${sha256}`);
      await chmod(part, 0o444);
      await rename(part, path.join(imagesDir, name));
    } finally {
      await rm(part, { force: true });
    }
  }

  /** Fetches one file from the first host holding the image that sends it intact. */
  async function fetchFile(image: ImageFiles, name: string, sha256: string): Promise<void> {
    const self = await hostId();
    const copies = await db.imageCopy.findMany({
      where: { imageId: image.id, hostId: { not: self } },
      include: { host: { select: { name: true, apiAddress: true, heartbeatAt: true } } },
    });
    // The host heard from last is the likeliest to answer.
    const peers = copies.map((copy) => copy.host).sort((a, b) => b.heartbeatAt.getTime() - a.heartbeatAt.getTime());
    if (peers.length === 0) throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" is on no host any more; import it again.`);
    const failures: string[] = [];
    for (const peer of peers) {
      try {
        const started = Date.now();
        await fetchFrom(peer.apiAddress, name, sha256);
        log(`image ${image.name}: ${name} fetched from host ${peer.name} in ${Date.now() - started} ms`);
        return;
      } catch (error) {
        log(`image ${image.name}: fetching ${name} from host ${peer.name} failed: ${errorMessage(error)}`);
        failures.push(peer.name);
      }
    }
    throw new HangarError(
      "IMAGE_NOT_READY",
      `Image "${image.name}" is not on this host, and no host holding it (${failures.join(", ")}) could send it; try again once one is up.`,
    );
  }

  /**
   * The image's files in this host's store, fetched from a peer first where missing, and
   * this host recorded as holding them.
   */
  async function ensureLocal(image: ImageFiles): Promise<LocalImage> {
    const files = filesOf(image);
    let fetched = false;
    for (const file of files) {
      if (await exists(file.local)) continue;
      if (!file.sha256)
        throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" is not on this host and has no recorded checksum to fetch it by; import it here.`);
      const expected = file.sha256;
      let pending = fetching.get(file.name);
      if (!pending) {
        pending = fetchFile(image, file.name, expected).finally(() => fetching.delete(file.name));
        fetching.set(file.name, pending);
      }
      await pending;
      fetched = true;
    }
    if (fetched) await recordLocal(image.id);
    const local = (file: string | null) => (file ? localFile(image, file).local : null);
    return { path: localFile(image, image.path).local, kernel: local(image.kernel), initrd: local(image.initrd) };
  }

  /**
   * GET /internal/images/<name>: a file of this host's store, for a peer holding a pass for
   * that very file. Anything else is 403 (no pass) or 404 (no such file here).
   */
  function serve(req: IncomingMessage, res: ServerResponse): void {
    const name = decodeURIComponent(new URL(req.url ?? "/", "http://hangar").pathname.slice(INTERNAL_IMAGES_PATH.length));
    const text = (status: number, body: string) => res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(body);
    if (req.method !== "GET") return void text(405, "Only GET.");
    if (!STORE_NAME.test(name) || !verifyPass(clusterKey, req.headers[CLUSTER_HEADER], passPurpose(name)))
      return void text(403, "This endpoint is for Hangar hosts only.");
    const file = path.join(imagesDir, name);
    void stat(file).then(
      (info) => {
        if (!info.isFile()) return void text(404, "Not on this host.");
        res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(info.size) });
        pipeline(createReadStream(file), res).catch(() => res.destroy());
      },
      () => void text(404, "Not on this host."),
    );
  }

  /**
   * Removes the store files no image names any more: an image deleted on another host
   * leaves its copies here. Returns how many went.
   */
  async function sweep(): Promise<number> {
    const named = new Set<string>();
    for (const image of await db.image.findMany({ select: { path: true, kernel: true, initrd: true } })) {
      for (const file of [image.path, image.kernel, image.initrd]) {
        const name = file ? storeName(file) : undefined;
        if (name) named.add(name);
      }
    }
    let removed = 0;
    for (const name of await readdir(imagesDir).catch(() => [])) {
      if (!STORE_NAME.test(name) || named.has(name) || fetching.has(name)) continue;
      const file = path.join(imagesDir, name);
      const modified = await stat(file).then(
        (s) => s.mtimeMs,
        () => Date.now(),
      );
      if (Date.now() - modified < ORPHAN_AFTER_MS) continue;
      await rm(file, { force: true });
      removed += 1;
    }
    if (removed > 0) log(`${removed} image file(s) no image names any more removed from this host's store`);
    return removed;
  }

  return { ensureLocal, recordLocal, registerStore, serve, sweep };
}
