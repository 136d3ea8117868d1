/**
 * The words browser and server share, in one dependency-free module: VM names, roles and who may
 * control a VM, tags, the states a pool's members wait in, terminal kinds and their control
 * messages, and the limits on a VM's resources. Components import this, never `server/`;
 * the server imports it too, so the two cannot drift apart. No imports, no I/O.
 */

// Names

/**
 * VM and pool names are DNS labels (a VM's is its guest's hostname). The source doubles as an
 * HTML `pattern` (anchored there, and read with the v flag, so the hyphen is escaped).
 */
export const VM_NAME_PATTERN = "[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?";
export const VM_NAME_RULE = "1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen";

// Pages

/**
 * The request header through which Hangar's server hands the page it renders the caller's
 * account.me answer (superjson, URI-encoded), so a tab knows who is signed in without asking
 * first. The server sets it on page requests and drops any a client sent.
 */
export const SESSION_SEED_HEADER = "x-hangar-session";

/**
 * The same for the inventory page's first vm.list (firstVmListQuery of the caller's role):
 * its rows come with the page instead of after a round trip once the page runs.
 */
export const LIST_SEED_HEADER = "x-hangar-list";

/**
 * The most calls one batched API request carries: the server refuses a longer batch (each
 * call runs at once, so a batch of thousands would be a way around every rate a client
 * keeps to), and Hangar's clients split theirs to fit.
 */
export const MAX_BATCH_CALLS = 50;

// Passwords

/** better-auth's limits on a password (server/auth/better-auth.ts is set from these). */
export const PASSWORD_LENGTH = { min: 8, max: 128 } as const;

// Roles

export const ROLES = ["admin", "operator", "viewer"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * May this person change this VM? Admins: every VM; operators: the ones they own; viewers:
 * none. The server enforces it (server/auth/permissions.ts); the dashboard uses it to offer
 * only what will be allowed.
 */
export function canControl(who: { role: string; userId: string } | null | undefined, vm: { ownerId: string | null }): boolean {
  if (!who) return false;
  return who.role === "admin" || (who.role === "operator" && vm.ownerId === who.userId);
}

// VMs

/** The states of seed 004's state machine (server/vms/state.ts has its transitions). */
export const VM_STATES = [
  "Initial",
  "Cloning",
  "Starting",
  "Running",
  "Stopping",
  "Stopped",
  "Suspending",
  "Suspended",
  "Deleting",
  "Deleted",
  "ErrorUnknown",
] as const;

/**
 * Where a state sorts when vm.list sorts by state (the order above). A VM being made (Initial,
 * Cloning) sorts with the Stopped VMs it becomes: its place then does not move while it is
 * made, so a caller paging by state meanwhile gets it once.
 */
export function stateSortRank(state: string): number {
  const sortsAs = state === "Initial" || state === "Cloning" ? "Stopped" : state;
  const rank = (VM_STATES as readonly string[]).indexOf(sortsAs);
  return rank < 0 ? VM_STATES.length : rank;
}

/** What vm.list sorts by: name, state, when it was created, its owner's email, its host's name. */
export const VM_SORT_KEYS = ["name", "state", "created", "owner", "host"] as const;
export type VmSortKey = (typeof VM_SORT_KEYS)[number];

/** Rows per vm.list page the inventory table asks for: a screenful and more, small enough to arrive at once. */
export const VM_LIST_PAGE_SIZE = 100;

/**
 * The inventory table's first vm.list, before anyone picks a filter or order: newest first,
 * and an operator's own VMs only (admins and viewers see the whole inventory).
 */
export function firstVmListQuery(role: string) {
  return { ...(role === "operator" ? { owner: "mine" as const } : {}), sort: "created" as const, order: "desc" as const, limit: VM_LIST_PAGE_SIZE };
}

/** The fields of a VM's list row vm.list sorts by. */
export interface VmSortFields {
  id: string;
  name: string;
  state: string;
  createdAt: Date;
  owner: { email: string } | null;
  host: { name: string } | null;
}

type SortValue = string | number | null;

/** The value a row sorts by; null when it has none (no owner, no host). */
function sortValue(row: VmSortFields, sort: VmSortKey): SortValue {
  switch (sort) {
    case "name":
      return row.name;
    case "state":
      return stateSortRank(row.state);
    case "created":
      return row.createdAt.getTime();
    case "owner":
      return row.owner?.email ?? null;
    case "host":
      return row.host?.name ?? null;
  }
}

/** A row's place in vm.list's order: its sort value, then its id (ids are unique, so no two rows tie). */
export interface VmSortKeyOf {
  value: SortValue;
  id: string;
}

export function vmSortKey(row: VmSortFields, sort: VmSortKey): VmSortKeyOf {
  return { value: sortValue(row, sort), id: row.id };
}

/**
 * The order of two keys in `direction` (1 ascending, -1 descending), as vm.list pages: rows
 * without the value (no owner, no host) come last either way. The server pages by it and the
 * dashboard puts a changed row in its place by it.
 */
export function compareVmSortKeys(a: VmSortKeyOf, b: VmSortKeyOf, direction: 1 | -1): number {
  if (a.value !== b.value) {
    if (a.value === null) return 1;
    if (b.value === null) return -1;
    return direction * (a.value < b.value ? -1 : 1);
  }
  return direction * (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The states in which the guest runs, so it may print to its serial console. */
export function guestRuns(state: string): boolean {
  return state === "Starting" || state === "Running" || state === "Stopping";
}

/** The image Hangar builds and registers itself (scripts/build-guest.sh). */
export const BUILTIN_IMAGE = "hangar-tiny";

/** The image picked when none is named (the New VM form, `hangar create`): the built-in one, else the first. */
export function defaultImage<T extends { name: string }>(ready: readonly T[]): T | undefined {
  return ready.find((image) => image.name === BUILTIN_IMAGE) ?? ready[0];
}

/** The guest's firmware: SeaBIOS, or OVMF (UEFI) with a per-VM variable store. */
export const FIRMWARES = ["bios", "uefi"] as const;
export type Firmware = (typeof FIRMWARES)[number];

// Tags

/**
 * Tags group VMs for people (Proxmox's tags): "web", "team-a", "v1.2". Case does not count:
 * a tag is kept lowercased. A VM has at most MAX_TAGS, kept sorted.
 */
export const TAG_PATTERN = /^[a-z0-9][a-z0-9_.+-]{0,31}$/;
export const TAG_RULE = "1 to 32 letters, digits, _ . + and -, starting with a letter or digit";
export const MAX_TAGS = 16;

/** The tags in `text` as a person types them, separated by spaces or commas. */
export function splitTags(text: string): string[] {
  return text.split(/[\s,]+/).filter((tag) => tag !== "");
}

/**
 * `tags` as a VM keeps them (lowercased, sorted, each once), or the sentence saying what is
 * wrong with them.
 */
export function normalizeTags(tags: readonly string[]): { tags: string[] } | { problem: string } {
  const kept = [...new Set(tags.map((tag) => tag.trim().toLowerCase()))].filter((tag) => tag !== "").sort();
  const bad = kept.find((tag) => !TAG_PATTERN.test(tag));
  if (bad !== undefined) {
    // Named back only when it reads as a word: pasted text may be anything.
    const named = /^[\w.+-]{1,40}$/.test(bad) ? `"${bad}" is not a tag` : "One of those is not a tag";
    return { problem: `${named}: a tag is ${TAG_RULE}.` };
  }
  if (kept.length > MAX_TAGS) return { problem: `A VM has at most ${MAX_TAGS} tags; this is ${kept.length}.` };
  return { tags: kept };
}

// Pools

/**
 * Where members wait until acquired (seed vmspool: suspended or stopped; here also running,
 * and paused): Running (booted and ready), Paused (booted and ready, CPUs stopped with QMP
 * stop: memory held, no CPU used, handed out with QMP cont), Suspended (state saved to disk,
 * no process), Stopped (booted afresh on acquire).
 */
export const STAGING_STATES = ["Running", "Paused", "Suspended", "Stopped"] as const;
export type StagingState = (typeof STAGING_STATES)[number];

// Terminals (the protocol: server/terminal/protocol.ts)

/** `tunnel`: raw bytes to the VM's SSH port, for the user's own ssh (`hangar proxy`). */
export const TERMINAL_KINDS = ["console", "shell", "monitor", "display", "tunnel"] as const;
export type TerminalKind = (typeof TERMINAL_KINDS)[number];

export function isTerminalKind(value: string): value is TerminalKind {
  return (TERMINAL_KINDS as readonly string[]).includes(value);
}

/** Text frames: browser -> server resize; server -> browser exit, error and status. */
export type ControlMessage =
  { type: "resize"; cols: number; rows: number } | { type: "exit"; code: number } | { type: "error"; message: string } | { type: "status"; state: string };

/** A resize is clamped to 1..MAX_COLS x 1..MAX_ROWS. */
export const MAX_COLS = 500;
export const MAX_ROWS = 200;

// VM resources

/** What one VM (or pool member) may be given, checked by the API and offered by the forms. */
export const VM_LIMITS = {
  cpus: { min: 1, max: 16 },
  memoryMiB: { min: 64, max: 65536 },
  /** Port forwards besides SSH's. */
  forwards: { max: 16 },
} as const;
