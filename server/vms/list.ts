/**
 * vm.list for a team: filters, sort and keyset paging over one snapshot of the inventory.
 *
 * The snapshot (every row, slim) is read once per change and shared by every caller and
 * every page asked for meanwhile; a page of it is computed once per distinct input and then
 * shared too, so pollers and concurrent callers cost a lookup. A change on the bus (every
 * state change, create and delete, here or, through the fan-out, on another host) starts a
 * new snapshot; other writes (ready condition, forwards) show within SNAPSHOT_MAX_AGE_MS.
 *
 * Paging is keyset on (sort value, id), not offsets: the cursor names the last row's key, the
 * next page starts after it in the snapshot of that moment. A VM created while a caller pages
 * shows up at most once and shifts no page after it; every VM that was there throughout
 * (with the same sort value) is returned exactly once.
 */
import { z } from "zod";
import { HangarError } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import type { VmListInput, VmSortKey } from "../api/schemas.ts";
import { readInventory } from "./inventory.ts";
import { compareVmSortKeys as compareKeys, vmSortKey, type VmSortKeyOf as Key } from "../../lib/vocabulary.ts";
import type { State } from "./state.ts";

/** How long a snapshot serves when no change came (writes that publish nothing show by then). */
const SNAPSHOT_MAX_AGE_MS = 1000;
/** Distinct inputs whose pages a snapshot keeps. */
const PAGES_KEPT = 512;

export type VmListRow = Awaited<ReturnType<typeof readInventory>>[number];

export interface VmListPage {
  items: VmListRow[];
  /** Pass back as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
  /** VMs matching the filters, on every page together. */
  total: number;
}

interface Snapshot {
  version: number;
  readAt: number;
  rows: Promise<VmListRow[]>;
  pages: Map<string, Promise<VmListPage>>;
}

interface Inventory {
  version: number;
  snapshot?: Snapshot;
}

const inventories = new WeakMap<Hangar, Inventory>();

function inventoryOf(hangar: Hangar): Inventory {
  let inventory = inventories.get(hangar);
  if (!inventory) {
    const created: Inventory = { version: 0 };
    hangar.bus.subscribe(() => {
      created.version += 1;
    });
    inventories.set(hangar, (inventory = created));
  }
  return inventory;
}

/** The change counter: it moves with every change published on the bus. */
export function inventoryVersion(hangar: Hangar): number {
  return inventoryOf(hangar).version;
}

function currentSnapshot(hangar: Hangar): Snapshot {
  const inventory = inventoryOf(hangar);
  const now = Date.now();
  const held = inventory.snapshot;
  if (held && held.version === inventory.version && now - held.readAt < SNAPSHOT_MAX_AGE_MS) return held;
  const snapshot: Snapshot = { version: inventory.version, readAt: now, rows: readInventory(hangar), pages: new Map() };
  // A failed read is not kept: the next caller reads again.
  snapshot.rows.catch(() => {
    if (inventory.snapshot === snapshot) inventory.snapshot = undefined;
  });
  inventory.snapshot = snapshot;
  return snapshot;
}

const cursorSchema = z.object({
  sort: z.enum(["name", "state", "created", "owner", "host"]),
  order: z.enum(["asc", "desc"]),
  value: z.union([z.string(), z.number(), z.null()]),
  id: z.string(),
});

function encodeCursor(sort: VmSortKey, order: "asc" | "desc", key: Key): string {
  return Buffer.from(JSON.stringify({ sort, order, value: key.value, id: key.id })).toString("base64url");
}

function decodeCursor(cursor: string, sort: VmSortKey, order: "asc" | "desc"): Key {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const found = cursorSchema.safeParse(parsed);
  if (!found.success)
    throw new HangarError("INVALID_INPUT", "That is not a cursor vm.list returned; pass nextCursor as it came, or leave cursor out for the first page.");
  if (found.data.sort !== sort || found.data.order !== order) {
    throw new HangarError(
      "INVALID_INPUT",
      `That cursor belongs to a list sorted by ${found.data.sort} ${found.data.order}; ask with the same sort and order, or leave cursor out to start over.`,
    );
  }
  return { value: found.data.value, id: found.data.id };
}

type Query = NonNullable<VmListInput>;

function matches(query: Query, ownerId: string | undefined): (row: VmListRow) => boolean {
  const search = query.search?.toLowerCase();
  const tag = query.tag?.toLowerCase();
  const states = query.state === undefined ? undefined : new Set<State>(Array.isArray(query.state) ? query.state : [query.state]);
  return (row) =>
    (search === undefined || row.name.includes(search)) &&
    (states === undefined || states.has(row.state)) &&
    (ownerId === undefined || row.ownerId === ownerId) &&
    (query.hostId === undefined || row.hostId === query.hostId) &&
    (query.imageId === undefined || row.imageId === query.imageId) &&
    (query.poolId === undefined || row.poolId === query.poolId) &&
    (tag === undefined || row.tags.includes(tag));
}

function pageOf(rows: VmListRow[], query: Query, ownerId: string | undefined, limit: number): VmListPage {
  const direction = query.order === "asc" ? 1 : -1;
  const keyed = rows.filter(matches(query, ownerId)).map((row) => ({ row, key: vmSortKey(row, query.sort) }));
  keyed.sort((a, b) => compareKeys(a.key, b.key, direction));
  let start = 0;
  if (query.cursor) {
    const after = decodeCursor(query.cursor, query.sort, query.order);
    // The first row past the cursor's key in this order (binary search: the rows are sorted).
    let high = keyed.length;
    while (start < high) {
      const middle = (start + high) >>> 1;
      const entry = keyed[middle];
      if (entry && compareKeys(entry.key, after, direction) <= 0) start = middle + 1;
      else high = middle;
    }
  }
  const page = keyed.slice(start, start + limit);
  const last = page[page.length - 1];
  const more = start + limit < keyed.length;
  return { items: page.map((entry) => entry.row), nextCursor: more && last ? encodeCursor(query.sort, query.order, last.key) : null, total: keyed.length };
}

/**
 * A page of the inventory. No input: every VM, oldest first, in one page (what vm.list
 * returned before it paged). `callerId` is whom owner "mine" means.
 */
export async function listVmPage(hangar: Hangar, input: VmListInput, callerId: string | undefined): Promise<VmListPage> {
  const query: Query = input ?? { sort: "created", order: "asc", limit: Number.POSITIVE_INFINITY };
  const ownerId = query.owner === "mine" ? (callerId ?? "") : query.owner;
  const snapshot = currentSnapshot(hangar);
  const key = JSON.stringify([input ?? null, ownerId ?? null]);
  let page = snapshot.pages.get(key);
  if (!page) {
    if (snapshot.pages.size >= PAGES_KEPT) snapshot.pages.clear();
    page = snapshot.rows.then((rows) => pageOf(rows, query, ownerId, query.limit));
    snapshot.pages.set(key, page);
    // A refused input (a bad cursor) is answered each time, not kept.
    page.catch(() => snapshot.pages.delete(key));
  }
  return page;
}

/**
 * VM `id`'s row in the snapshot lists were last served from, without reading a new one;
 * undefined when none is held or it lacks the VM.
 */
export async function heldRow(hangar: Hangar, id: string): Promise<VmListRow | undefined> {
  const rows = await inventoryOf(hangar).snapshot?.rows;
  return rows?.find((row) => row.id === id);
}

/** The tags VMs have, by tag, each with how many VMs have it (from vm.list's snapshot: free while nothing changes). */
export async function tagsInUse(hangar: Hangar): Promise<{ tag: string; vms: number }[]> {
  const counts = new Map<string, number>();
  for (const row of await currentSnapshot(hangar).rows) for (const tag of row.tags) counts.set(tag, (counts.get(tag) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([tag, vms]) => ({ tag, vms }));
}
