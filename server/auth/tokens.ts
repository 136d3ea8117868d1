/**
 * API tokens for services: `hgr_` + 32 random bytes, shown once, stored as a sha256 hash.
 * A token acts with its owner's role until it expires or is revoked.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db.ts";
import { HangarError } from "../errors.ts";
import { isRole, type Principal } from "./permissions.ts";

const PREFIX = "hgr_";

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export async function createToken(db: Db, userId: string, input: { name: string; expiresInDays?: number }) {
  if (await db.apiToken.findUnique({ where: { userId_name: { userId, name: input.name } } })) {
    throw new HangarError("ALREADY_EXISTS", `You already have a token named "${input.name}"; revoke it or pick another name.`);
  }
  const token = `${PREFIX}${randomBytes(32).toString("base64url")}`;
  const row = await db.apiToken.create({
    data: {
      name: input.name,
      userId,
      hash: hashToken(token),
      prefix: token.slice(0, PREFIX.length + 6),
      expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
    },
  });
  return { token, id: row.id, name: row.name, prefix: row.prefix, expiresAt: row.expiresAt };
}

/** The tokens of a user, without anything secret. */
export function listTokens(db: Db, userId: string) {
  return db.apiToken.findMany({
    where: { userId },
    select: { id: true, name: true, prefix: true, expiresAt: true, lastUsedAt: true, revokedAt: true, createdAt: true },
    orderBy: { createdAt: "asc" },
  });
}

export async function revokeToken(db: Db, userId: string, tokenId: string) {
  const token = await db.apiToken.findUnique({ where: { id: tokenId } });
  // Someone else's token is "not found" to you: its existence is not yours to learn.
  if (!token || token.userId !== userId) throw new HangarError("NOT_FOUND", `No token with id "${tokenId}" among yours.`);
  return db.apiToken.update({ where: { id: tokenId }, data: { revokedAt: token.revokedAt ?? new Date() } });
}

/** The principal for a bearer token, or undefined when it is unknown, expired or revoked. */
export async function principalForToken(db: Db, token: string): Promise<Principal | undefined> {
  if (!token.startsWith(PREFIX)) return undefined;
  const row = await db.apiToken.findUnique({ where: { hash: hashToken(token) }, include: { user: true } });
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= new Date()) || row.user.disabled) return undefined;
  if (!isRole(row.user.role)) return undefined;
  // Last use to the minute is enough, and spares a write per request.
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await db.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } });
  }
  return { userId: row.userId, email: row.user.email, role: row.user.role, via: "token", tokenName: row.name };
}
