/** Users, managed by admins: add (with a password), change role and quotas, disable, remove. */
import type { Db } from "../db.ts";
import { HangarError } from "../errors.ts";
import type { Auth } from "./better-auth.ts";
import type { Role } from "./permissions.ts";
import { accessChanged } from "./access.ts";
import { claimSetupCode, discardSetupCode, issueSetupCode, restoreSetupCode, setupCodeMatches } from "./setup-code.ts";

export interface NewUser {
  email: string;
  name: string;
  password: string;
  role: Role;
}

export interface Quotas {
  maxVms: number | null;
  maxCpus: number | null;
  maxMemoryMiB: number | null;
}

export async function addUser(db: Db, auth: Auth, input: NewUser) {
  const email = input.email.toLowerCase();
  if (await db.user.findUnique({ where: { email } })) {
    throw new HangarError("ALREADY_EXISTS", `A user with the email ${email} already exists.`);
  }
  const context = await auth.$context;
  const user = await context.internalAdapter.createUser({ email, name: input.name, emailVerified: true, role: input.role }, { method: "admin" });
  await context.internalAdapter.linkAccount({
    userId: user.id,
    providerId: "credential",
    accountId: user.id,
    password: await context.password.hash(input.password),
  });
  return db.user.findUniqueOrThrow({ where: { id: user.id }, select: userFields });
}

export const userFields = {
  id: true,
  email: true,
  name: true,
  role: true,
  disabled: true,
  maxVms: true,
  maxCpus: true,
  maxMemoryMiB: true,
  createdAt: true,
} as const;

export function listUsers(db: Db) {
  return db.user.findMany({ select: userFields, orderBy: { createdAt: "asc" } });
}

async function existing(db: Db, userId: string) {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user) throw new HangarError("NOT_FOUND", `No user with id "${userId}".`);
  return user;
}

/** Refuses a change that would leave no enabled admin. */
async function keepAnAdmin(db: Db, userId: string) {
  const admins = await db.user.count({ where: { role: "admin", disabled: false, id: { not: userId } } });
  if (admins === 0) throw new HangarError("INVALID_INPUT", "This is the last enabled admin; make someone else admin first.");
}

export type UserChange = { role?: Role; disabled?: boolean } & Partial<Quotas>;

/** Changes a user; `changed` says, for the audit log, what differs from before ("" when nothing does). */
export async function updateUser(db: Db, userId: string, change: UserChange) {
  const user = await existing(db, userId);
  if (user.role === "admin" && ((change.role && change.role !== "admin") || change.disabled)) await keepAnAdmin(db, userId);
  const updated = await db.user.update({ where: { id: userId }, data: change, select: userFields });
  if (change.disabled) await db.session.deleteMany({ where: { userId } });
  accessChanged(db);
  return { user: updated, changed: describeChange(user, updated) };
}

const QUOTA_LABELS: [keyof Quotas, string, string][] = [
  ["maxVms", "VM quota", ""],
  ["maxCpus", "vCPU quota", ""],
  ["maxMemoryMiB", "memory quota", " MiB"],
];

function describeChange(before: Quotas & { role: string; disabled: boolean }, after: Quotas & { role: string; disabled: boolean }): string {
  const parts: string[] = [];
  if (before.role !== after.role) parts.push(`role ${before.role} → ${after.role}`);
  if (before.disabled !== after.disabled) parts.push(after.disabled ? "disabled" : "enabled");
  for (const [key, label, unit] of QUOTA_LABELS) {
    const was = before[key];
    const now = after[key];
    if (was !== now) parts.push(`${label} ${was === null ? "none" : `${was}${unit}`} → ${now === null ? "none" : `${now}${unit}`}`);
  }
  return parts.join(", ");
}

/**
 * Wrong current passwords given to a password change, per user, within the last 15 minutes:
 * a stolen session must not become a way to guess the password without sign-in's limit.
 */
const WRONG_CURRENT_LIMIT = 5;
const WRONG_CURRENT_WINDOW_MS = 15 * 60_000;
const wrongCurrent = new WeakMap<Db, Map<string, number[]>>();

function recentMisses(db: Db, userId: string): number[] {
  const byUser = wrongCurrent.get(db) ?? new Map<string, number[]>();
  wrongCurrent.set(db, byUser);
  const since = Date.now() - WRONG_CURRENT_WINDOW_MS;
  const misses = (byUser.get(userId) ?? []).filter((at) => at > since);
  byUser.set(userId, misses);
  return misses;
}

/**
 * Sets a user's password: their own once `current` matches, or an admin's reset (no
 * `current`). Every session of theirs ends but `keepSessionId` (the one that asked), so a
 * password someone else knew stops working everywhere at once.
 */
export async function setPassword(db: Db, auth: Auth, userId: string, password: string, options: { current?: string; keepSessionId?: string } = {}) {
  const user = await existing(db, userId);
  const context = await auth.$context;
  const credential = (await context.internalAdapter.findAccounts(userId)).find((account) => account.providerId === "credential");
  if (options.current !== undefined) {
    const misses = recentMisses(db, userId);
    if (misses.length >= WRONG_CURRENT_LIMIT) {
      throw new HangarError("RATE_LIMITED", `The current password was wrong ${WRONG_CURRENT_LIMIT} times in a row; try again in 15 minutes.`);
    }
    if (!(credential?.password && (await context.password.verify({ hash: credential.password, password: options.current })))) {
      misses.push(Date.now());
      throw new HangarError("INVALID_INPUT", "The current password is not right; type it again.");
    }
    misses.length = 0;
  }
  const hash = await context.password.hash(password);
  if (credential) await context.internalAdapter.updatePassword(userId, hash);
  else await context.internalAdapter.linkAccount({ userId, providerId: "credential", accountId: userId, password: hash });
  await db.session.deleteMany({ where: { userId, ...(options.keepSessionId ? { id: { not: options.keepSessionId } } : {}) } });
  accessChanged(db);
  return user;
}

/** Removes a user, their sessions and tokens. Their VMs stay, without an owner. */
export async function removeUser(db: Db, userId: string) {
  const user = await existing(db, userId);
  if (user.role === "admin") await keepAnAdmin(db, userId);
  await db.user.delete({ where: { id: userId } });
  accessChanged(db);
  return user;
}

/**
 * First run: with no user at all, HANGAR_ADMIN_EMAIL / HANGAR_ADMIN_PASSWORD become the
 * first admin. Otherwise, while no user exists, a fresh setup code is issued for the
 * /setup page. Returns that code, or null when Hangar has an admin (and no code).
 */
export async function bootstrapAdmin(db: Db, auth: Auth, stateDir: string, email: string | undefined, password: string | undefined): Promise<string | null> {
  if ((await db.user.count()) === 0) {
    if (!email || !password) return issueSetupCode(stateDir);
    try {
      await addUser(db, auth, { email, password, name: email.split("@")[0] ?? "admin", role: "admin" });
    } catch (error) {
      // Hosts of one cluster started together with the same admin: another one made it first.
      if (!(await db.user.findUnique({ where: { email: email.toLowerCase() } }))) throw error;
    }
  }
  discardSetupCode(stateDir);
  return null;
}

export const SETUP_CODE_REFUSAL =
  "Enter the setup code Hangar printed in its log at start-up; it is also in the file setup-code in Hangar's state directory (HANGAR_STATE_DIR).";

/**
 * The first admin, through the dashboard's first-run page: only while no user exists, and
 * only with the setup code (a page on another site that reaches this server cannot know it).
 */
export async function createFirstAdmin(db: Db, auth: Auth, stateDir: string, input: Omit<NewUser, "role"> & { setupCode: string }) {
  if ((await db.user.count()) > 0) throw new HangarError("INVALID_INPUT", "Hangar already has users; sign in instead.");
  if (!setupCodeMatches(stateDir, input.setupCode) || !claimSetupCode(stateDir)) throw new HangarError("FORBIDDEN", SETUP_CODE_REFUSAL);
  try {
    return await addUser(db, auth, { email: input.email, name: input.name, password: input.password, role: "admin" });
  } catch (error) {
    restoreSetupCode(stateDir, input.setupCode.trim());
    throw error;
  }
}

/**
 * Quota check of `userId`'s VMs: a new VM of `cpus` and `memoryMiB`, or, with `resizing`, that
 * VM of theirs given these in place of its own. `owner` names them in the refusal when the
 * caller is someone else (an admin resizing another user's VM, or giving them one).
 */
export async function assertWithinQuota(
  db: Db,
  userId: string,
  cpus: number,
  memoryMiB: number,
  { resizing, owner }: { resizing?: string; owner?: string } = {},
) {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user) return;
  const owned = await db.vm.findMany({
    where: { ownerId: userId, state: { not: "Deleted" }, ...(resizing ? { id: { not: resizing } } : {}) },
    select: { cpus: true, memoryMiB: true },
  });
  const usedCpus = owned.reduce((sum, vm) => sum + vm.cpus, 0);
  const usedMemory = owned.reduce((sum, vm) => sum + vm.memoryMiB, 0);
  const whose = owner ? `The quota of ${owner}` : "Your quota";
  /** What is used and asked for, e.g. "you use 2 and asked for 3 more". */
  const usage = (used: string, wanted: string) =>
    resizing
      ? owner
        ? `their other VMs use ${used} and this one would have ${wanted}`
        : `your other VMs use ${used} and you asked for ${wanted} for this one`
      : owner
        ? `they use ${used} and this VM has ${wanted}`
        : `you use ${used} and asked for ${wanted} more`;
  if (!resizing && user.maxVms !== null && owned.length + 1 > user.maxVms) {
    const quota = `${user.maxVms} ${user.maxVms === 1 ? "VM" : "VMs"}`;
    // A quota lowered below what someone has leaves more than one VM to delete before the next.
    const over = owned.length + 1 - user.maxVms;
    throw new HangarError(
      "QUOTA_EXCEEDED",
      owner
        ? `The quota of ${owner} is ${quota} and they have ${owned.length}; raise it on the Users page first.`
        : `Your quota is ${quota} and you have ${owned.length}; delete ${over === 1 ? "one" : over} first.`,
    );
  }
  if (user.maxCpus !== null && usedCpus + cpus > user.maxCpus) {
    throw new HangarError("QUOTA_EXCEEDED", `${whose} is ${user.maxCpus} ${user.maxCpus === 1 ? "vCPU" : "vCPUs"}; ${usage(String(usedCpus), String(cpus))}.`);
  }
  if (user.maxMemoryMiB !== null && usedMemory + memoryMiB > user.maxMemoryMiB) {
    throw new HangarError("QUOTA_EXCEEDED", `${whose} is ${user.maxMemoryMiB} MiB of memory; ${usage(`${usedMemory} MiB`, `${memoryMiB} MiB`)}.`);
  }
}
