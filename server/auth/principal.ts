/** Who sent a request: an API token (Authorization: Bearer) or a better-auth session cookie. */
import type { IncomingHttpHeaders } from "node:http";
import { fromNodeHeaders } from "better-auth/node";
import type { Db } from "../db.ts";
import type { Auth } from "./better-auth.ts";
import { isRole, type Principal } from "./permissions.ts";
import { principalForToken } from "./tokens.ts";

export async function authenticate(db: Db, auth: Auth, headers: IncomingHttpHeaders): Promise<Principal | null> {
  const authorization = headers.authorization;
  if (authorization?.startsWith("Bearer ")) {
    return (await principalForToken(db, authorization.slice("Bearer ".length).trim())) ?? null;
  }
  const session = await auth.api.getSession({ headers: fromNodeHeaders(headers) }).catch(() => null);
  if (!session) return null;
  // The row, not the cookie cache: a role change or a disabling takes effect at once.
  const user = await db.user.findUnique({ where: { id: session.user.id } });
  if (!user || user.disabled || !isRole(user.role)) return null;
  return { userId: user.id, email: user.email, role: user.role, via: "session", sessionId: session.session.id };
}
