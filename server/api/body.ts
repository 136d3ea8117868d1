/**
 * Request bodies of the API (/api/trpc and /api/v1), read here within a limit before either
 * library sees them: tRPC would buffer a body of any size, and both parse it before the
 * permission check, so without this anyone could make the server hold a 150 MB request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Inputs are small JSON: the largest, vm.create's userData, is at most 64 KiB of text;
 * image imports and syncs name paths and URLs rather than carry files.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

export const BODY_TOO_LARGE = "The request body is over 1 MiB, more than any Hangar call takes; send a smaller one.";

/**
 * The body as text (UTF-8, as fetch reads it), or undefined when it is larger than `limit`:
 * without reading a byte when its Content-Length says so, else once the bytes read pass the
 * limit (a chunked body). After undefined, reply 413 with closeAfterReply so the rest is never read.
 * Rejects when the client goes away before the body ends.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string | undefined> {
  if (Number(req.headers["content-length"]) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        req.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(new TextDecoder().decode(Buffer.concat(chunks)));
    };
    const onGone = () => {
      stop();
      reject(new Error("the client went away before the request body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}

/** Makes the reply to an oversized body the connection's last, so its rest is dropped, not read. */
export function closeAfterReply(res: ServerResponse): void {
  res.setHeader("Connection", "close");
}
