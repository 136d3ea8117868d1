/**
 * A file from another host, streamed to disk over the internal routes: what image copies and
 * VM moves both fetch. The peer must keep sending: one silent for `idleTimeoutMs` has gone.
 */
import { createWriteStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { CLUSTER_HEADER } from "../auth/cluster-secret.ts";

/** Writes what `url` answers to `to` (mode 0600), `pass` as its cluster pass; returns how many bytes came. */
export async function downloadFromPeer(
  url: URL,
  pass: string,
  to: string,
  { idleTimeoutMs, onChunk = () => undefined }: { idleTimeoutMs: number; onChunk?: (chunk: Buffer) => void },
): Promise<number> {
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), idleTimeoutMs);
  let received = 0;
  const watch = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), idleTimeoutMs);
      received += chunk.length;
      onChunk(chunk);
      callback(null, chunk);
    },
  });
  try {
    const response = await fetch(url, { headers: { [CLUSTER_HEADER]: pass }, signal: idle.signal });
    if (!response.ok || !response.body) throw new Error(`it answered ${response.status}`);
    // The DOM and Node typings of a fetch body differ; at run time it is Node's stream.
    await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), watch, createWriteStream(to, { mode: 0o600 }));
    return received;
  } finally {
    clearTimeout(timer);
  }
}
