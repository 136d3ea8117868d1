/**
 * Who may do what. Every tRPC procedure names one of these in its meta; the middleware in
 * api/trpc.ts enforces it, and a test walks the router to make sure none is missing.
 */
import { canControl, type Role } from "../../lib/vocabulary.ts";

export { ROLES, isRole, type Role } from "../../lib/vocabulary.ts";

export const PERMISSIONS = {
  /** Anyone, signed in or not (first-run status). */
  public: "anyone",
  /** Any signed-in user: lists, details, events, images, pools. */
  read: "any signed-in user",
  /** Create VMs (within quota), clone VMs, import images. */
  "vm.create": "operators and admins",
  /** Lifecycle, snapshots, exec, sync, shells, release: the VM's owner (operator) or an admin. */
  "vm.control": "the VM's owner if operator; admins on any VM",
  /** Take a VM from a pool; it becomes the caller's. */
  "pool.use": "operators and admins",
  /** Create, resize and delete pools. */
  "pool.manage": "admins",
  /** Own API tokens and SSH public keys: create, list, revoke. */
  "tokens.own": "any signed-in user, on their own tokens and keys",
  /** Users, roles, quotas; the whole audit log. */
  admin: "admins",
} as const;

export type Permission = keyof typeof PERMISSIONS;

/** Who is asking, from a session cookie or an API token. */
export interface Principal {
  userId: string;
  email: string;
  role: Role;
  via: "session" | "token";
  /** The token's name and id when via is "token". */
  tokenName?: string;
  tokenId?: string;
  /** A read-only token: its reads have its owner's role, and every change is refused. */
  readOnly?: boolean;
  /** The browser session when via is "session" (terminals end with it). */
  sessionId?: string;
}

/** How a principal shows in events: "alice@example.com" or "token ci (alice@example.com)". */
export function actorLabel(principal: Principal): string {
  return principal.via === "token" ? `token ${principal.tokenName ?? "?"} (${principal.email})` : principal.email;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function atLeast(principal: Principal, role: Role): boolean {
  return RANK[principal.role] >= RANK[role];
}

/** May `principal` change this VM? Admins: every VM; operators: their own; viewers: none. */
export function canControlVm(principal: Principal, vm: { ownerId: string | null }): boolean {
  return canControl(principal, vm);
}

/** The sentence for a refusal of `permission` to someone of `role`. */
export function refusal(permission: Permission, role: Role): string {
  switch (permission) {
    case "vm.control":
      // A viewer may own VMs (made before a demotion) and still change none.
      if (role === "viewer") return "Viewers cannot change VMs, their own included; an admin can make you an operator.";
      return "You can only change VMs you own; ask an admin or the VM's owner.";
    case "admin":
    case "pool.manage":
      return "Only admins can do this.";
    default:
      return `Your role cannot do this (needs: ${PERMISSIONS[permission]}).`;
  }
}
