// Imports with the real qemu-img: what enters the store is a self-contained qcow2 copy, the
// given file is only read, and URL imports stay out of the host.
import { TRPCError } from "@trpc/server";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { createImages, type ImportSettings } from "./images.ts";

let t: TestHangar;
let server: http.Server;
let base: string;
/** Bytes of a small self-contained qcow2 and of a raw disk with an MBR signature. */
let qcow2Bytes: Buffer;
let shadowBytes: Buffer;
/** Compressed images served by the test server, by route. */
const packed = new Map<string, Buffer>();
const rawDisk = Buffer.alloc(1024 * 1024);
rawDisk[510] = 0x55;
rawDisk[511] = 0xaa;

async function qemuImg(...args: string[]) {
  await execa("qemu-img", args);
}

const MiB = 1024 * 1024;
const COMPRESSORS = { xz: ["xz", "--stdout", "-T1"], gzip: ["gzip", "--stdout"], zstd: ["zstd", "--stdout", "-q"] } as const;

/** `data` compressed by the host's own tool. */
async function compress(kind: keyof typeof COMPRESSORS, data: Buffer): Promise<Buffer> {
  const [command, ...args] = COMPRESSORS[kind];
  const { stdout } = await execa(command, args, { input: data, encoding: "buffer" });
  return Buffer.from(stdout);
}

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a TRPCError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

/** An images service on the test database with URL import limits of the test's choosing. */
function imagesWith(settings: Partial<ImportSettings>, hostId?: () => Promise<string>) {
  return createImages({
    db: t.hangar.db,
    imagesDir: t.env.imagesDir,
    hostId,
    settings: { allow: ["127.0.0.1/32"], connectTimeoutMs: 5000, idleTimeoutMs: 1000, maxBytes: 8 * 1024 * 1024, ...settings },
  });
}

/** Imports `url` with `images` and waits for the import to end. */
async function importUrl(images: ReturnType<typeof createImages>, name: string, url: string) {
  const started = await images.importImage({ name, url });
  expect(started.status).toBe("importing");
  await images.importSettled(started.id);
  return t.hangar.db.image.findUniqueOrThrow({ where: { id: started.id } });
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function leftovers(): string[] {
  return readdirSync(t.env.imagesDir).filter((name) => name.startsWith(".import-"));
}

beforeAll(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
  mkdirSync(t.env.imagesDir, { recursive: true });
  const scratch = path.join(t.env.stateDir, "scratch");
  mkdirSync(scratch);
  await qemuImg("create", "-q", "-f", "qcow2", path.join(scratch, "plain.qcow2"), "4M");
  await qemuImg("create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", path.join(scratch, "shadow.qcow2"), "1M");
  qcow2Bytes = readFileSync(path.join(scratch, "plain.qcow2"));
  shadowBytes = readFileSync(path.join(scratch, "shadow.qcow2"));
  packed.set("/disk.qcow2.zst", await compress("zstd", qcow2Bytes));
  packed.set("/raw-xz", await compress("xz", rawDisk));
  packed.set("/bomb.gz", await compress("gzip", Buffer.alloc(48 * MiB)));
  packed.set("/cut.xz", (await compress("xz", qcow2Bytes)).subarray(0, 200));

  server = http.createServer((req, res) => {
    const route = new URL(req.url ?? "/", "http://x").pathname;
    const send = (body: Buffer, type = "application/octet-stream") => {
      res.writeHead(200, { "content-type": type, "content-length": body.length });
      res.end(body);
    };
    const compressed = packed.get(route);
    if (compressed) return send(compressed);
    switch (route) {
      case "/disk.qcow2":
        return send(qcow2Bytes);
      case "/raw.img":
        return send(rawDisk);
      case "/shadow.qcow2":
        return send(shadowBytes);
      case "/junk.img":
        return send(Buffer.alloc(6 * 1024 * 1024, 7));
      case "/dashboard":
        return send(Buffer.from("<!DOCTYPE html><html><body>Hangar</body></html>".padEnd(4096, " ")), "text/html; charset=utf-8");
      case "/stall":
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 1024 * 1024 });
        res.write(Buffer.alloc(512));
        return; // and never another byte
      case "/endless": {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(256 * 1024);
        const pump = () => {
          while (res.write(chunk)) if (res.destroyed) return;
        };
        res.on("drain", pump);
        res.on("close", () => res.off("drain", pump));
        pump();
        return;
      }
      case "/announced-huge":
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 100 * 1024 * 1024 * 1024 });
        return res.end();
      case "/to-disk":
        res.writeHead(302, { location: "/disk.qcow2" });
        return res.end();
      case "/to-loopback":
        res.writeHead(302, { location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.qcow2` });
        return res.end();
      case "/loop":
        res.writeHead(307, { location: "/loop" });
        return res.end();
      default:
        res.writeHead(404);
        return res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await t.cleanup();
});

describe("path imports", () => {
  it("refuses a qcow2 that names a backing file, with a sentence and nothing left behind", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "shadow.qcow2"), shadowBytes);
    const result = await refusal(api.image.import({ name: "shadow", path: "shadow.qcow2" }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/names a backing file/);
    expect(result.message).not.toContain("/");
    expect(await t.hangar.db.image.count({ where: { name: "shadow" } })).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("refuses a qcow2 with an external data file", async () => {
    const api = await callerFor(t.hangar);
    const data = path.join(t.env.imagesDir, "data.raw");
    await qemuImg("create", "-q", "-f", "qcow2", "-o", `data_file=${data}`, path.join(t.env.imagesDir, "external.qcow2"), "1M");
    const result = await refusal(api.image.import({ name: "external", path: "external.qcow2" }));
    expect(result).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/external data file/) });
  });

  it("imports a blank raw disk by path, and refuses a file that is not whole sectors (a text file is no disk)", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "blank.img"), Buffer.alloc(MiB));
    writeFileSync(path.join(t.env.imagesDir, "notes.txt"), "these are notes, not a disk\n");
    writeFileSync(path.join(t.env.imagesDir, "empty.img"), "");
    expect(await api.image.import({ name: "blank", path: "blank.img" })).toMatchObject({ status: "ready", format: "qcow2" });
    for (const [name, file] of [
      ["notes", "notes.txt"],
      ["empty", "empty.img"],
    ] as const) {
      const result = await refusal(api.image.import({ name, path: file }));
      expect(result).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^The file is not a disk image: .*512-byte sectors/) });
      expect(await t.hangar.db.image.count({ where: { name } })).toBe(0);
    }
    expect(leftovers()).toEqual([]);
  });

  it.each(["vmdk", "vdi", "vhdx", "qed"])("refuses a %s disk", async (format) => {
    const api = await callerFor(t.hangar);
    await qemuImg("create", "-q", "-f", format, path.join(t.env.imagesDir, `disk.${format}`), "1M");
    const result = await refusal(api.image.import({ name: `as-${format}`, path: `disk.${format}` }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toContain(`in ${format} format`);
  });

  it("refuses a qcow2 whose header is damaged, with a sentence rather than an internal error", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "damaged.qcow2"), Buffer.concat([qcow2Bytes.subarray(0, 8), Buffer.alloc(4096, 0xff)]));
    expect(await refusal(api.image.import({ name: "damaged", path: "damaged.qcow2" }))).toEqual({
      code: "BAD_REQUEST",
      message: "qemu-img could not read the image's header; it is not a valid qcow2 disk.",
    });
  });

  it("refuses a vmdk descriptor whose extent is a host file", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(
      path.join(t.env.imagesDir, "extent.vmdk"),
      '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/shadow" 0\n',
    );
    expect((await refusal(api.image.import({ name: "extent", path: "extent.vmdk" }))).message).toContain("in vmdk format");
  });

  it("stores a converted copy without backing and leaves the given file as it was", async () => {
    const api = await callerFor(t.hangar);
    const source = path.join(t.env.imagesDir, "given.qcow2");
    writeFileSync(source, qcow2Bytes, { mode: 0o640 });
    const before = statSync(source);
    const image = await api.image.import({ name: "given", path: "given.qcow2" });
    expect(image).toMatchObject({ status: "ready", format: "qcow2", sha256: sha256(qcow2Bytes) });
    expect(image.path).toBe(path.join(t.env.imagesDir, `${sha256(qcow2Bytes)}.qcow2`));

    const after = statSync(source);
    expect({ mode: after.mode, ino: after.ino, nlink: after.nlink, size: after.size }).toEqual({
      mode: before.mode,
      ino: before.ino,
      nlink: 1,
      size: before.size,
    });
    expect(sha256(readFileSync(source))).toBe(sha256(qcow2Bytes));

    const stored = statSync(image.path);
    expect(stored.ino).not.toBe(before.ino);
    expect(stored.mode & 0o777).toBe(0o444);
    const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", "--", image.path])).stdout) as Record<string, unknown>;
    expect(info.format).toBe("qcow2");
    expect(info["backing-filename"]).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  it.each([
    ["xz", "qcow2", "packed.qcow2"],
    ["gzip", "raw", "packed-gz.img"],
    ["zstd", "qcow2", "disk.img.xz"],
  ] as const)("decompresses a %s-compressed %s disk, told by its magic not its name (%s), and leaves the given file as it was", async (kind, inside, name) => {
    const api = await callerFor(t.hangar);
    const given = await compress(kind, inside === "qcow2" ? qcow2Bytes : rawDisk);
    const source = path.join(t.env.imagesDir, name);
    writeFileSync(source, given, { mode: 0o640 });
    const before = statSync(source);
    const image = await api.image.import({ name: `packed-${kind}`, path: name, sha256: sha256(given) });
    // Keyed by the sum of what was given (the one a download page publishes); progress counted the same bytes.
    expect(image).toMatchObject({ status: "ready", format: "qcow2", sha256: sha256(given), progress: BigInt(given.length) });
    expect(image.path).toBe(path.join(t.env.imagesDir, `${sha256(given)}.qcow2`));
    // The same disk as the one compressed: qemu-img compares the guest-visible contents.
    const original = path.join(t.env.stateDir, "scratch", `original-${kind}`);
    writeFileSync(original, inside === "qcow2" ? qcow2Bytes : rawDisk);
    expect((await execa("qemu-img", ["compare", "-f", inside, "-F", "qcow2", "--", original, image.path], { reject: false })).exitCode).toBe(0);
    const after = statSync(source);
    expect({ mode: after.mode, ino: after.ino, nlink: after.nlink, size: after.size, mtimeMs: after.mtimeMs }).toEqual({
      mode: before.mode,
      ino: before.ino,
      nlink: 1,
      size: before.size,
      mtimeMs: before.mtimeMs,
    });
    expect(leftovers()).toEqual([]);
  });

  it("keeps every check on the decompressed disk: a backing file inside gzip is refused", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "shadow.gz"), await compress("gzip", shadowBytes));
    expect(await refusal(api.image.import({ name: "shadow-gz", path: "shadow.gz" }))).toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/names a backing file/),
    });
    // Compressed twice is not a disk either: the inner layer is refused by its magic.
    writeFileSync(path.join(t.env.imagesDir, "twice.xz"), await compress("xz", await compress("gzip", qcow2Bytes)));
    expect(await refusal(api.image.import({ name: "twice", path: "twice.xz" }))).toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/in gzip-compressed format/),
    });
    expect(await t.hangar.db.image.count({ where: { name: { in: ["shadow-gz", "twice"] } } })).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("refuses a compressed image that decompresses past the size cap (a decompression bomb), with a sentence", async () => {
    writeFileSync(path.join(t.env.imagesDir, "bomb.zst"), await compress("zstd", Buffer.alloc(48 * MiB)));
    await expect(imagesWith({}).importImage({ name: "bomb", path: "bomb.zst" })).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: "The zstd-compressed image decompresses to more than 8 MiB, the import limit (HANGAR_IMPORT_MAX_BYTES); an admin can raise it.",
    });
    expect(await t.hangar.db.image.count({ where: { name: "bomb" } })).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("copies the kernel and initrd into the store, keyed by their sha256", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "boot.img"), rawDisk);
    const kernel = Buffer.from("not really a kernel, but bytes to copy");
    const initrd = Buffer.from("not really an initrd");
    writeFileSync(path.join(t.env.imagesDir, "my-vmlinuz"), kernel);
    writeFileSync(path.join(t.env.imagesDir, "my-initrd"), initrd);
    const kernelInode = statSync(path.join(t.env.imagesDir, "my-vmlinuz")).ino;
    const image = await api.image.import({ name: "direct", path: "boot.img", kernel: "my-vmlinuz", initrd: "my-initrd", cmdline: "console=ttyS0 quiet" });
    expect(image.kernel).toBe(path.join(t.env.imagesDir, `${sha256(kernel)}.vmlinuz`));
    expect(image.initrd).toBe(path.join(t.env.imagesDir, `${sha256(initrd)}.initrd`));
    expect(image.cmdline).toBe("console=ttyS0 quiet");
    expect(readFileSync(image.kernel ?? "")).toEqual(kernel);
    expect(readFileSync(image.initrd ?? "")).toEqual(initrd);
    expect(statSync(image.kernel ?? "").ino).not.toBe(kernelInode);
    expect(statSync(path.join(t.env.imagesDir, "my-vmlinuz")).nlink).toBe(1);
  });

  it("refuses a kernel command line without a kernel", async () => {
    const api = await callerFor(t.hangar);
    const result = await refusal(api.image.import({ name: "no-kernel", path: "boot.img", cmdline: "console=ttyS0" }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/command line needs a kernel/);
  });

  it("lets exactly one of 10 concurrent imports with one name through; the rest get CONFLICT", async () => {
    const api = await callerFor(t.hangar);
    writeFileSync(path.join(t.env.imagesDir, "race.img"), rawDisk);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => api.image.import({ name: "race", path: "race.img" })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    expect(refusals).toHaveLength(9);
    for (const error of refusals) {
      expect(error).toBeInstanceOf(TRPCError);
      expect(error).toMatchObject({ code: "CONFLICT", message: 'An image named "race" already exists; pick another name.' });
    }
    expect(await t.hangar.db.image.findMany({ where: { name: "race" }, select: { status: true } })).toEqual([{ status: "ready" }]);
    expect(leftovers()).toEqual([]);
  });

  it("stores the built-in guest's disk, kernel and initrd in the store once", async () => {
    const image = await tinyImage(t.hangar);
    expect(path.dirname(image.path)).toBe(t.env.imagesDir);
    expect(path.dirname(image.kernel ?? "")).toBe(t.env.imagesDir);
    expect(path.dirname(image.initrd ?? "")).toBe(t.env.imagesDir);
    expect(sha256(readFileSync(image.kernel ?? ""))).toBe(sha256(readFileSync(path.join(t.env.guestDir, "vmlinuz"))));
    const first = statSync(image.path);
    const again = await tinyImage(t.hangar);
    expect(again.path).toBe(image.path);
    expect(statSync(again.path)).toMatchObject({ ino: first.ino, mtimeMs: first.mtimeMs });
  });
});

describe("image.list", () => {
  it("shows host paths to admins only", async () => {
    await tinyImage(t.hangar);
    await t.hangar.db.image.create({
      data: { name: "broken", path: "", status: "failed", error: "Import failed: could not read /var/lib/hangar/images/x.part" },
    });
    const admin = await (await callerFor(t.hangar)).image.list();
    const tinyForAdmin = admin.find((i) => i.name === "hangar-tiny");
    expect(tinyForAdmin?.path).toMatch(/^\//);
    expect(tinyForAdmin?.kernel).toMatch(/^\//);
    for (const role of ["viewer", "operator"] as const) {
      const listed = await (await callerFor(t.hangar, role)).image.list();
      const tiny = listed.find((i) => i.name === "hangar-tiny");
      expect(tiny).toMatchObject({ path: null, kernel: null, initrd: null, directBoot: true, status: "ready" });
      expect(listed.find((i) => i.name === "broken")?.error).toBe("Import failed: could not read …");
      expect(JSON.stringify(listed, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value))).not.toContain(t.env.stateDir);
    }
  });
});

describe("URL imports", () => {
  it("refuses loopback without the allow setting", async () => {
    const api = await callerFor(t.hangar);
    const result = await refusal(api.image.import({ name: "loopback", url: `${base}/disk.qcow2` }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/may not reach 127\.0\.0\.1.*HANGAR_IMPORT_ALLOW/);
    for (const url of ["http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://10.0.0.1/"]) {
      expect((await refusal(api.image.import({ name: "internal", url }))).message).toMatch(/may not reach/);
    }
    expect(await t.hangar.db.image.count({ where: { name: { in: ["loopback", "internal"] } } })).toBe(0);
  });

  it("imports a qcow2 from an allowed local server, through a redirect", async () => {
    const images = imagesWith({});
    const image = await importUrl(images, "from-url", `${base}/to-disk`);
    expect(image).toMatchObject({ status: "ready", format: "qcow2", sha256: sha256(qcow2Bytes), progress: BigInt(qcow2Bytes.length), error: null });
    expect(image.path).toBe(path.join(t.env.imagesDir, `${sha256(qcow2Bytes)}.qcow2`));
    const raw = await importUrl(images, "raw-from-url", `${base}/raw.img`);
    expect(raw).toMatchObject({ status: "ready", format: "qcow2", sha256: sha256(rawDisk) });
  });

  it("decompresses zstd and xz downloads, keyed and counted by the bytes received", async () => {
    const images = imagesWith({});
    const zst = packed.get("/disk.qcow2.zst") ?? Buffer.alloc(0);
    expect(await importUrl(images, "zst-from-url", `${base}/disk.qcow2.zst`)).toMatchObject({
      status: "ready",
      format: "qcow2",
      sha256: sha256(zst),
      progress: BigInt(zst.length),
      error: null,
    });
    const xz = packed.get("/raw-xz") ?? Buffer.alloc(0);
    expect(await importUrl(images, "xz-from-url", `${base}/raw-xz`)).toMatchObject({ status: "ready", sha256: sha256(xz), sizeBytes: expect.any(BigInt) });
    expect(leftovers()).toEqual([]);
  });

  it("fails an import whose redirect leads to loopback when only the first host is allowed", async () => {
    const image = await importUrl(imagesWith({ allow: ["localhost"] }), "rebound", `${base.replace("127.0.0.1", "localhost")}/to-loopback`);
    expect(image.status).toBe("failed");
    expect(image.error).toMatch(/may not reach 127\.0\.0\.1/);
  });

  it.each([
    ["a qcow2 with a backing file", "/shadow.qcow2", /names a backing file/],
    ["a web page", "/dashboard", /web page/],
    ["raw bytes that are no disk", "/junk.img", /not a disk image/],
    ["a server that stalls", "/stall", /sent nothing for 1 s/],
    ["an endless body", "/endless", /over the 8388608-byte limit/],
    ["an announced size over the cap", "/announced-huge", /over the 8388608-byte limit/],
    ["a redirect loop", "/loop", /more than 5 redirects/],
    [
      "a gzip bomb",
      "/bomb.gz",
      /^Import failed: The gzip-compressed image decompresses to more than 8 MiB, the import limit \(HANGAR_IMPORT_MAX_BYTES\); an admin can raise it\.$/,
    ],
    ["xz data cut short", "/cut.xz", /xz-compressed data is damaged or cut short/],
    ["a missing file", "/nothing-here", /answered 404/],
  ])("fails %s, with the reason and no host path", async (_label, route, reason) => {
    const image = await importUrl(imagesWith({}), `bad-${route.replace(/\W/g, "")}`, `${base}${route}`);
    expect(image.status).toBe("failed");
    expect(image.error).toMatch(reason);
    expect(image.error).not.toContain(t.env.stateDir);
    expect(image.path).toBe("");
    expect(leftovers()).toEqual([]);
  });

  it("marks an import that a restart interrupted as failed and removes its partial file", async () => {
    const row = await t.hangar.db.image.create({ data: { name: "interrupted", path: "", status: "importing" } });
    const part = path.join(t.env.imagesDir, `.import-${row.id}.disk.part`);
    writeFileSync(part, "half a disk");
    expect(await imagesWith({}).failInterruptedImports()).toBe(1);
    expect(await t.hangar.db.image.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
      status: "failed",
      error: "Hangar restarted while this image was being made; import or publish it again under this name.",
    });
    expect(existsSync(part)).toBe(false);
    // Importing again under the failed import's name replaces it.
    const again = await importUrl(imagesWith({}), "interrupted", `${base}/disk.qcow2`);
    expect(again.status).toBe("ready");
  });

  it("records the host an import runs on, leaves another host's import alone at this host's restart, and lets one of a gone host be deleted", async () => {
    const db = t.hangar.db;
    const beta = await db.host.create({
      data: { name: "beta-imports", apiAddress: "http://10.0.0.2:3000", heartbeatAt: new Date(), accelerator: "tcg", freeMemoryMiB: 1 },
    });
    const theirs = await db.image.create({ data: { name: "importing-on-beta", path: "", status: "importing", importHostId: beta.id } });
    const ours = await db.image.create({ data: { name: "importing-here", path: "", status: "importing", importHostId: await t.hangar.hosts.selfId() } });
    const here = imagesWith({}, t.hangar.hosts.selfId);
    expect(await here.failInterruptedImports()).toBe(1);
    expect((await db.image.findUniqueOrThrow({ where: { id: theirs.id } })).status).toBe("importing");
    expect((await db.image.findUniqueOrThrow({ where: { id: ours.id } })).status).toBe("failed");

    // Beta's import is its own while beta beats; once beta is offline for good, an admin may delete it.
    const api = await callerFor(t.hangar);
    expect((await refusal(api.image.delete({ id: theirs.id }))).message).toBe(
      'Image "importing-on-beta" is still importing; wait until it is ready or failed.',
    );
    await db.host.update({ where: { id: beta.id }, data: { heartbeatAt: new Date(Date.now() - 3_600_000) } });
    expect(await api.image.delete({ id: theirs.id })).toEqual({ id: theirs.id });

    const started = await here.importImage({ name: "fetched-here", url: `${base}/disk.qcow2` });
    expect((await db.image.findUniqueOrThrow({ where: { id: started.id } })).importHostId).toBe(await t.hangar.hosts.selfId());
    await here.importSettled(started.id);
  });
});

describe("image.get and image.delete", () => {
  it("shows what uses an image, refuses to delete it while used, then deletes the row and its stored file", async () => {
    const api = await callerFor(t.hangar);
    await qemuImg("create", "-q", "-f", "qcow2", path.join(t.env.imagesDir, "doomed.qcow2"), "6M");
    const image = await api.image.import({ name: "doomed", path: "doomed.qcow2" });
    const vm = await api.vm.create({ name: "on-doomed", imageId: image.id, cpus: 1, memoryMiB: 128 });
    expect(await api.image.get({ id: image.id })).toMatchObject({ name: "doomed", vms: [{ id: vm.id, name: "on-doomed" }], pools: [] });

    expect(await refusal(api.image.delete({ id: image.id }))).toEqual({
      code: "CONFLICT",
      message: 'Image "doomed" is used by VM on-doomed; delete those first.',
    });
    const viewer = await callerFor(t.hangar, "viewer");
    expect((await refusal(viewer.image.delete({ id: image.id }))).code).toBe("FORBIDDEN");
    expect((await viewer.image.get({ id: image.id })).path).toBeNull();

    await api.vm.delete({ id: vm.id });
    await api.image.delete({ id: image.id });
    expect(existsSync(image.path ?? "")).toBe(false);
    expect((await refusal(api.image.get({ id: image.id }))).code).toBe("NOT_FOUND");
    const builtin = await tinyImage(t.hangar);
    expect((await refusal(api.image.delete({ id: builtin.id }))).message).toMatch(/built in/);
  });
});
