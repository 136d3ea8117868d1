/**
 * One secret per cluster. Every host of one database signs session cookies with the same
 * auth secret (so a cookie from one host is good on all of them), and derives from it the
 * key hosts authenticate their internal requests with (terminal proxying, image copies).
 *
 * HANGAR_AUTH_SECRET, when set, is the secret (set it alike on every host). Otherwise the
 * first host to start stores one in the database and every host reads it from there; an
 * install that kept its secret in `<state>/auth-secret` before brings that one along, so its
 * sessions stay valid.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Db } from "../db.ts";
import { isUniqueViolation } from "../errors.ts";

const AUTH_SECRET = "auth";

/** The auth secret: HANGAR_AUTH_SECRET, else the one in the database (stored by the first host). */
export async function resolveAuthSecret({ db, stateDir, fromEnv }: { db: Db; stateDir: string; fromEnv?: string }): Promise<string> {
  if (fromEnv) return fromEnv;
  const stored = await db.secret.findUnique({ where: { name: AUTH_SECRET } });
  if (stored) return stored.value;
  // A single host's earlier secret, kept in its state directory, becomes the cluster's.
  const earlier = (await readFile(path.join(stateDir, "auth-secret"), "utf8").catch(() => "")).trim();
  const value = earlier || randomBytes(32).toString("base64url");
  try {
    await db.secret.create({ data: { name: AUTH_SECRET, value } });
    return value;
  } catch (error) {
    // Another host stored one at the same moment: theirs is the cluster's.
    if (!isUniqueViolation(error)) throw error;
    const winner = await db.secret.findUniqueOrThrow({ where: { name: AUTH_SECRET } });
    return winner.value;
  }
}

/** The key hosts sign internal requests with, derived from the auth secret (never the secret itself). */
export function clusterKey(authSecret: string): Buffer {
  return createHmac("sha256", authSecret).update("hangar cluster requests v1").digest();
}

/** The header an internal request carries its signed pass in. */
export const CLUSTER_HEADER = "x-hangar-cluster";

const passSchema = z.object({
  /** What the pass is for, e.g. "terminal" or "image:<file>": a pass for one is no good for another. */
  purpose: z.string().min(1),
  /** Milliseconds since the epoch after which it is refused. */
  expiresAt: z.number().int(),
  nonce: z.string().min(1),
  data: z.unknown(),
});

const sign = (key: Buffer, body: string) => createHmac("sha256", key).update(body).digest();

/**
 * A short-lived pass for one internal request, signed with the cluster key: only hosts of
 * this cluster can make one. `data` travels with it (a terminal's grant).
 */
export function issuePass(key: Buffer, purpose: string, data: unknown = null, ttlMs = 30_000): string {
  const body = Buffer.from(JSON.stringify({ purpose, expiresAt: Date.now() + ttlMs, nonce: randomBytes(12).toString("base64url"), data })).toString(
    "base64url",
  );
  return `${body}.${sign(key, body).toString("base64url")}`;
}

/**
 * The pass's nonce and data when it is signed with `key`, unexpired and for `purpose`;
 * undefined otherwise. The signature is compared in constant time.
 */
export function verifyPass(key: Buffer, pass: string | string[] | undefined, purpose: string): { nonce: string; data: unknown; expiresAt: number } | undefined {
  if (typeof pass !== "string") return undefined;
  const [body, signature, ...rest] = pass.split(".");
  if (!body || !signature || rest.length > 0) return undefined;
  const given = Buffer.from(signature, "base64url");
  const expected = sign(key, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  const parsed = passSchema.safeParse(json);
  if (!parsed.success || parsed.data.purpose !== purpose || parsed.data.expiresAt <= Date.now()) return undefined;
  return { nonce: parsed.data.nonce, data: parsed.data.data, expiresAt: parsed.data.expiresAt };
}
