/**
 * What the inventory table asks for (search, filters, sort) and the same rule applied to one
 * row: a live change keeps, drops or adds a row in a cached list by this test, so a patched
 * list shows what asking the server again would show.
 */
import type { VmRow } from "./trpc.ts";

export type VmState = VmRow["state"];

export interface VmFilter {
  /** Part of the name, any case; "" for every name. */
  search: string;
  /** "" for any state. */
  state: VmState | "";
  /** "all", "mine" or a user id. */
  owner: string;
  /** Ids; "" for any. */
  hostId: string;
  imageId: string;
  poolId: string;
}

export const SORT_KEYS = ["name", "state", "image", "owner", "host", "cpus", "memoryMiB", "createdAt"] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface VmSort {
  key: SortKey;
  desc: boolean;
}

/** Newest first: a VM just created shows on top. */
export const DEFAULT_SORT: VmSort = { key: "createdAt", desc: true };

/** Operators start on their own VMs; admins and viewers see the whole inventory. */
export function defaultFilter(role: string): VmFilter {
  return { search: "", state: "", owner: role === "operator" ? "mine" : "all", hostId: "", imageId: "", poolId: "" };
}

/** The owner the filter names: a user id, or undefined for everyone. */
export function ownerIdOf(filter: Pick<VmFilter, "owner">, myUserId: string): string | undefined {
  if (filter.owner === "all") return undefined;
  return filter.owner === "mine" ? myUserId : filter.owner;
}

/** Does this row belong in a list asked for with `filter`? */
export function matchesFilter(row: VmRow, filter: VmFilter, myUserId: string): boolean {
  const search = filter.search.trim().toLowerCase();
  if (search && !row.name.toLowerCase().includes(search)) return false;
  if (filter.state && row.state !== filter.state) return false;
  const ownerId = ownerIdOf(filter, myUserId);
  if (ownerId !== undefined && row.ownerId !== ownerId) return false;
  if (filter.hostId && row.hostId !== filter.hostId) return false;
  if (filter.imageId && row.imageId !== filter.imageId) return false;
  if (filter.poolId && row.poolId !== filter.poolId) return false;
  return true;
}

function sortValue(row: VmRow, key: SortKey): string | number {
  switch (key) {
    case "image":
      return row.image.name;
    case "owner":
      return row.owner?.email ?? "";
    case "host":
      return row.host?.name ?? "";
    case "createdAt":
      return row.createdAt.getTime();
    default:
      return row[key];
  }
}

/** Order by the sort key, ties by id, so every list and every patched list agree. */
export function compareRows(a: VmRow, b: VmRow, sort: VmSort): number {
  const x = sortValue(a, sort.key);
  const y = sortValue(b, sort.key);
  const order = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return sort.desc ? -order : order;
}
