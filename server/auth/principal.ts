/** Who sent a request: an API token (Authorization: Bearer) or a better-auth session cookie. */
import type { IncomingHttpHeaders } from "node:http";
import { fromNodeHeaders } from "better-auth/node";
import type { Db } from "../db.ts";
import type { Auth } from "./better-auth.ts";
import { isRole, type Principal } from "./permissions.ts";
import { principalForToken } from "./tokens.ts";

/** The token of an `Authorization: Bearer <token>` header; the scheme's case does not matter (RFC 9110). */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^bearer +(\S+) *$/i.exec(authorization ?? "");
  return match?.[1];
}

export async function authenticate(db: Db, auth: Auth, headers: IncomingHttpHeaders): Promise<Principal | null> {
  const token = bearerToken(headers.authorization);
  if (token !== undefined) return (await principalForToken(db, token)) ?? null;
  const session = await auth.api.getSession({ headers: fromNodeHeaders(headers) }).catch(() => null);
  if (!session) return null;
  // The row, not the cookie cache: a role change or a disabling takes effect at once.
  const user = await db.user.findUnique({ where: { id: session.user.id } });
  if (!user || user.disabled || !isRole(user.role)) return null;
  return { userId: user.id, email: user.email, role: user.role, via: "session", sessionId: session.session.id };
}
