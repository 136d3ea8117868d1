/**
 * API tokens for services: `hgr_` + 32 random bytes, shown once, stored as a sha256 hash.
 * A token acts with its owner's role until it expires or is revoked; a read-only one only
 * reads (api/trpc.ts refuses its changes), whatever its owner's role.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db.ts";
import { HangarError } from "../errors.ts";
import { accessChanged, accessGeneration } from "./access.ts";
import { isRole, type Principal } from "./permissions.ts";

const PREFIX = "hgr_";

/**
 * How long a token's check serves before the database is asked again. A service calling many
 * times a second would otherwise cost a query each call. Revocations, disabled users and role
 * changes made on this host apply at once (they forget every check); made on another host of
 * a cluster, within this.
 */
const CHECK_SERVES_MS = 2000;
/** Checks kept at most; past it they are all forgotten (only tokens that passed are kept). */
const CHECKS_KEPT = 10_000;

/** Checks made since the last accessChanged(db) serve; older ones are forgotten. */
const checks = new WeakMap<Db, { generation: number; kept: Map<string, { principal: Principal; until: number }> }>();

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * A new token of `userId`. Made with a token (`madeWith`), it expires no later than that
 * token: a token that expires cannot mint one that outlives it.
 */
export async function createToken(db: Db, userId: string, input: { name: string; expiresInDays?: number; readOnly?: boolean }, madeWith?: string) {
  if (await db.apiToken.findUnique({ where: { userId_name: { userId, name: input.name } } })) {
    throw new HangarError("ALREADY_EXISTS", `You already have a token named "${input.name}"; revoke it or pick another name.`);
  }
  const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null;
  const maker = madeWith ? await db.apiToken.findUnique({ where: { id: madeWith }, select: { expiresAt: true } }) : null;
  if (maker?.expiresAt && (expiresAt === null || expiresAt > maker.expiresAt)) {
    const days = Math.floor((maker.expiresAt.getTime() - Date.now()) / 86_400_000);
    throw new HangarError(
      "FORBIDDEN",
      `The token you call with expires on ${maker.expiresAt.toISOString().slice(0, 10)}, and a token it makes may not outlive it: ${
        days >= 1 ? `set expiresInDays to ${days} or less, or ` : ""
      }make the new token signed in, on the Account page.`,
    );
  }
  const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
  const row = await db.apiToken.create({
    data: {
      name: input.name,
      userId,
      hash: hashToken(token),
      prefix: token.slice(0, PREFIX.length + 6),
      expiresAt,
      readOnly: input.readOnly ?? false,
    },
  });
  return { token, id: row.id, name: row.name, prefix: row.prefix, expiresAt: row.expiresAt, readOnly: row.readOnly };
}

/** The tokens of a user, without anything secret. */
export function listTokens(db: Db, userId: string) {
  return db.apiToken.findMany({
    where: { userId },
    select: { id: true, name: true, prefix: true, expiresAt: true, readOnly: true, lastUsedAt: true, revokedAt: true, createdAt: true },
    orderBy: { createdAt: "asc" },
  });
}

export async function revokeToken(db: Db, userId: string, tokenId: string) {
  const token = await db.apiToken.findUnique({ where: { id: tokenId } });
  // Someone else's token is "not found" to you: its existence is not yours to learn.
  if (!token || token.userId !== userId) throw new HangarError("NOT_FOUND", `No token with id "${tokenId}" among yours.`);
  const revoked = await db.apiToken.update({ where: { id: tokenId }, data: { revokedAt: token.revokedAt ?? new Date() } });
  // After the write: a call checked meanwhile would keep the token alive for the window.
  accessChanged(db);
  return revoked;
}

/** The principal for a bearer token, or undefined when it is unknown, expired or revoked. */
export async function principalForToken(db: Db, token: string): Promise<Principal | undefined> {
  if (!token.startsWith(PREFIX)) return undefined;
  const hash = hashToken(token);
  const generation = accessGeneration(db);
  let cache = checks.get(db);
  if (cache?.generation !== generation) checks.set(db, (cache = { generation, kept: new Map() }));
  const kept = cache.kept;
  const check = kept.get(hash);
  if (check && check.until > Date.now()) return check.principal;
  const row = await db.apiToken.findUnique({ where: { hash }, include: { user: true } });
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= new Date()) || row.user.disabled) return undefined;
  if (!isRole(row.user.role)) return undefined;
  // Last use to the minute is enough, and spares a write per request.
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await db.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } });
  }
  const principal: Principal = {
    userId: row.userId,
    email: row.user.email,
    role: row.user.role,
    via: "token",
    tokenName: row.name,
    tokenId: row.id,
    ...(row.readOnly ? { readOnly: true } : {}),
  };
  if (kept.size >= CHECKS_KEPT) kept.clear();
  // An expiry inside the window ends the check there.
  kept.set(hash, { principal, until: Math.min(Date.now() + CHECK_SERVES_MS, row.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY) });
  return principal;
}
