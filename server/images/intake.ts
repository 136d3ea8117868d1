/**
 * Where an import's bytes land: a private file in the images directory, decompressed on the
 * way when they are xz, gzip or zstd (told by their magic, never by a name) with the host's
 * own tool (Debian's xz-utils, gzip, zstd) reading a pipe. The file is written sparse: the
 * zero blocks a disk image is mostly made of take no space. A cap bounds what a compressed
 * image may decompress to, so a decompression bomb ends as a refusal, not a full disk.
 */
import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { HangarError } from "../errors.ts";

export type Compression = "xz" | "gzip" | "zstd";

const MAGIC: [Compression, Buffer][] = [
  ["xz", Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ["gzip", Buffer.from([0x1f, 0x8b, 0x08])],
  ["zstd", Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
];

/** Bytes needed to tell the compressions apart. */
const MAGIC_BYTES = 6;

/** The decompressing command of each, and the Debian package that has it. */
const TOOLS: Record<Compression, { command: string; args: string[]; pkg: string }> = {
  xz: { command: "xz", args: ["--decompress", "--stdout", "--quiet"], pkg: "xz-utils" },
  gzip: { command: "gzip", args: ["--decompress", "--stdout", "--quiet"], pkg: "gzip" },
  // Frames made with --long (windows past zstd's default 128 MiB limit) decompress too.
  zstd: { command: "zstd", args: ["--decompress", "--stdout", "--quiet", "--memory=2048MB"], pkg: "zstd" },
};

/** The compression `head` starts with, if any. */
export function sniffCompression(head: Buffer): Compression | undefined {
  return MAGIC.find(([, magic]) => head.length >= magic.length && head.subarray(0, magic.length).equals(magic))?.[0];
}

const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/** Writes `chunk` at `position`, skipping whole zero blocks (they stay holes). */
async function writeSkippingZeros(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let runStart = -1;
  for (let offset = 0; offset <= chunk.length; offset += BLOCK) {
    const block = chunk.subarray(offset, offset + BLOCK);
    const zero = block.length === 0 || block.equals(ZEROS.subarray(0, block.length));
    if (!zero && runStart < 0) runStart = offset;
    if (zero && runStart >= 0) {
      await handle.write(chunk, runStart, offset - runStart, position + runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) await handle.write(chunk, runStart, chunk.length - runStart, position + runStart);
}

/** Writes `source` into `handle` (sparse); throws `tooBig()` past `maxBytes`. Returns the length. */
async function writeSparse(source: AsyncIterable<Buffer>, handle: FileHandle, maxBytes: number, tooBig: () => Error): Promise<number> {
  let position = 0;
  for await (const chunk of source) {
    if (position + chunk.length > maxBytes) throw tooBig();
    await writeSkippingZeros(handle, chunk, position);
    position += chunk.length;
  }
  await handle.truncate(position);
  return position;
}

const formatGiB = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`);

export interface Intake {
  compression: Compression | undefined;
  /** Bytes written to the file: the disk, decompressed. */
  bytes: number;
}

/**
 * Writes the bytes of `source` into `file`, decompressed when they are compressed; a
 * compressed image larger than `maxBytes` once decompressed is refused (INVALID_INPUT).
 */
export async function intake(source: AsyncIterable<Buffer>, file: string, maxBytes: number): Promise<Intake> {
  const handle = await open(file, "w", 0o600);
  try {
    return await intakeInto(source, handle, maxBytes);
  } finally {
    await handle.close();
  }
}

async function intakeInto(source: AsyncIterable<Buffer>, handle: FileHandle, maxBytes: number): Promise<Intake> {
  const iterator = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < MAGIC_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  };
  const compression = sniffCompression(head);
  if (!compression) return { compression, bytes: await writeSparse(rest(), handle, Number.MAX_SAFE_INTEGER, () => new Error("unreachable size")) };

  const tool = TOOLS[compression];
  const child = execa(tool.command, tool.args, {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    buffer: { stdout: false, stderr: true },
    maxBuffer: 64 * 1024,
    reject: false,
  });
  const tooBig = new HangarError(
    "INVALID_INPUT",
    `The ${compression}-compressed image decompresses to more than ${formatGiB(maxBytes)}, the import limit (HANGAR_IMPORT_MAX_BYTES); an admin can raise it.`,
  );
  // The file is open before the tool starts, so its output is read from the first byte: a tool
  // that exits before a reader is attached would otherwise have its output drained unread.
  const [fed, written, ended] = await Promise.allSettled([
    pipeline(Readable.from(rest()), child.stdin),
    writeSparse(child.stdout, handle, maxBytes, () => tooBig).catch((error: unknown) => {
      // Past the cap (or unable to write) there is no use in decompressing further.
      child.kill("SIGKILL");
      throw error;
    }),
    child,
  ]);
  if (written.status === "rejected" && written.reason === tooBig) throw tooBig;
  if (ended.status === "rejected") throw ended.reason;
  if (ended.value.failed && "code" in ended.value && ended.value.code === "ENOENT") {
    throw new HangarError(
      "HOST_TOOL_MISSING",
      `The image is ${compression}-compressed and this host has no ${tool.command}; install the ${tool.pkg} package (scripts/setup.sh does).`,
    );
  }
  // The source failing (a dropped download, an idle timeout) explains the tool's early end.
  if (fed.status === "rejected" && !isBrokenPipe(fed.reason)) throw fed.reason;
  if (written.status === "rejected") throw written.reason;
  // The tool's own words go in the cause, for the log and a failing test; the caller's sentence
  // names no host detail.
  const account = new Error(
    `${tool.command} ${ended.value.signal ? `was ended by ${ended.value.signal}` : `exited with ${String(ended.value.exitCode)}`}: ${ended.value.stderr.trim() || "(nothing on stderr)"}`,
  );
  // Killed by something other than this code (the kernel out of memory, an admin): the data
  // may be fine, so the sentence says to try again rather than blaming the image.
  if (ended.value.exitCode === undefined) {
    throw new HangarError("DRIVER_FAILED", `The host's ${tool.command} stopped before it finished decompressing the image; try the import again.`, {
      cause: account,
    });
  }
  // A broken pipe with a clean exit: the tool stopped reading before the end (data after the stream).
  if (ended.value.exitCode !== 0 || fed.status === "rejected") {
    throw new HangarError("INVALID_INPUT", `The ${compression}-compressed data is damaged or cut short; ${tool.command} could not decompress it.`, {
      cause: fed.status === "rejected" ? fed.reason : account,
    });
  }
  return { compression, bytes: written.value };
}

function isBrokenPipe(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    (error.code === "EPIPE" || error.code === "ERR_STREAM_PREMATURE_CLOSE" || error.code === "ERR_STREAM_DESTROYED")
  );
}
