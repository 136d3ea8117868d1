/**
 * Sign-in, sign-out and sessions: better-auth with its Prisma adapter on our database.
 * Email + password only; nobody signs themselves up (admins add users). Sessions live in
 * HttpOnly SameSite cookies, Secure when Hangar's public origin is https. A disabled user
 * cannot start a session.
 */
import { PASSWORD_LENGTH } from "../../lib/vocabulary.ts";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { prismaAdapter } from "better-auth/adapters/prisma";
import { APIError } from "better-auth/api";
import { betterAuth } from "better-auth";
import { databaseProvider } from "../database-url.ts";
import type { Db } from "../db.ts";

/** The header main.ts fills with the peer's address before better-auth sees a request. */
export const CLIENT_IP_HEADER = "x-hangar-client-ip";

export interface AuthOptions {
  db: Db;
  databaseUrl: string;
  /** Origins allowed to post sign-in forms: Hangar's public origins and HANGAR_ALLOWED_ORIGINS. */
  trustedOrigins: string[];
  /** Hangar's canonical public origin; https there makes every cookie Secure. */
  baseURL: string;
  /** Sign-in attempts allowed per client address per minute. */
  signInsPerMinute: number;
  /** The signing secret: the cluster's (server/auth/cluster-secret.ts). */
  secret: string;
  /** Called after each sign-in, for the audit log. */
  onSignIn?: (user: { id: string; email: string }) => Promise<void>;
}

/**
 * A secret of this state directory alone, generated once: for a Hangar built without the
 * cluster's (tests on their own database). main.ts always passes the cluster's.
 */
export function stateDirSecret(stateDir: string): string {
  const file = path.join(stateDir, "auth-secret");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(stateDir, { recursive: true });
    const secret = randomBytes(32).toString("base64url");
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return readFileSync(file, "utf8").trim();
  }
}

export function createAuth({ db, databaseUrl, trustedOrigins, baseURL, signInsPerMinute, secret, onSignIn }: AuthOptions) {
  return betterAuth({
    appName: "Hangar",
    baseURL,
    basePath: "/api/auth",
    secret,
    trustedOrigins,
    database: prismaAdapter(db, { provider: databaseProvider(databaseUrl) === "sqlite" ? "sqlite" : "postgresql" }),
    emailAndPassword: { enabled: true, disableSignUp: true, minPasswordLength: PASSWORD_LENGTH.min, maxPasswordLength: PASSWORD_LENGTH.max },
    user: {
      additionalFields: {
        role: { type: "string", required: false, defaultValue: "viewer", input: false },
        disabled: { type: "boolean", required: false, defaultValue: false, input: false },
      },
    },
    rateLimit: { enabled: true, customRules: { "/sign-in/email": { window: 60, max: signInsPerMinute } } },
    session: { expiresIn: 60 * 60 * 24 * 7, updateAge: 60 * 60 * 24 },
    advanced: {
      defaultCookieAttributes: { httpOnly: true, sameSite: "lax" },
      useSecureCookies: new URL(baseURL).protocol === "https:",
      // main.ts sets this header from the socket on every request, so it cannot be forged:
      // sign-in attempts are rate-limited per client address.
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
    },
    telemetry: { enabled: false },
    databaseHooks: {
      session: {
        create: {
          before: async (session) => {
            const user = await db.user.findUnique({ where: { id: session.userId }, select: { disabled: true } });
            if (!user || user.disabled) throw new APIError("FORBIDDEN", { message: "This account is disabled; ask an admin." });
          },
          after: async (session) => {
            const user = await db.user.findUnique({ where: { id: session.userId }, select: { id: true, email: true } });
            if (user) await onSignIn?.(user);
          },
        },
      },
    },
  });
}

export type Auth = ReturnType<typeof createAuth>;
