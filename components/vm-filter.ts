/**
 * What the inventory table asks vm.list for (search, filters, sort), and the same filter
 * applied to one row: a live change keeps, drops or adds a row in a cached list by this
 * test, so a patched list holds what asking the server again would hold.
 */
// zod's mini build: the whole of zod is a large part of the inventory page's script.
import { z } from "zod/mini";
import { VM_LIST_PAGE_SIZE, VM_SORT_KEYS, firstVmListQuery } from "../lib/vocabulary.ts";
import type { RouterInputs, VmRow } from "./trpc.ts";

export type VmState = VmRow["state"];
export type VmListQuery = Exclude<RouterInputs["vm"]["list"], void | undefined>;
export type SortKey = NonNullable<VmListQuery["sort"]>;

export interface VmFilter {
  /** Part of the name; "" for every name. */
  search: string;
  /** "" for any state. */
  state: VmState | "";
  /** "all", "mine" or a user id. */
  owner: string;
  /** Ids; "" for any. */
  hostId: string;
  imageId: string;
  poolId: string;
  /** A tag; "" for any. */
  tag: string;
}

export interface VmSort {
  key: SortKey;
  desc: boolean;
}

/** The order is the same for every role. */
const firstOrder = firstVmListQuery("any role");

/** Newest first (firstVmListQuery): a VM just created shows on top, where live changes put new rows. */
export const DEFAULT_SORT: VmSort = { key: firstOrder.sort, desc: firstOrder.order === "desc" };

/** Operators start on their own VMs; admins and viewers see the whole inventory (firstVmListQuery). */
export function defaultFilter(role: string): VmFilter {
  return { search: "", state: "", owner: firstVmListQuery(role).owner ?? "all", hostId: "", imageId: "", poolId: "", tag: "" };
}

/** vm.list's input for a filter and sort (empty choices left out). */
export function listQuery(filter: VmFilter, sort: VmSort): VmListQuery {
  const search = filter.search.trim().toLowerCase();
  return {
    ...(search ? { search } : {}),
    ...(filter.state ? { state: filter.state } : {}),
    ...(filter.owner !== "all" ? { owner: filter.owner } : {}),
    ...(filter.hostId ? { hostId: filter.hostId } : {}),
    ...(filter.imageId ? { imageId: filter.imageId } : {}),
    ...(filter.poolId ? { poolId: filter.poolId } : {}),
    ...(filter.tag ? { tag: filter.tag } : {}),
    sort: sort.key,
    order: sort.desc ? "desc" : "asc",
    limit: VM_LIST_PAGE_SIZE,
  };
}

/** The cursor of the page after `page` (the table's getNextPageParam); undefined after the last. */
export function nextPageCursor(page: { nextCursor: string | null }): string | undefined {
  return page.nextCursor ?? undefined;
}

/** The filters and order of a cached list's input, read back from its query key. */
const cachedQuery = z.object({
  search: z.optional(z.string()),
  state: z.optional(z.union([z.string(), z.array(z.string())])),
  owner: z.optional(z.string()),
  hostId: z.optional(z.string()),
  imageId: z.optional(z.string()),
  poolId: z.optional(z.string()),
  tag: z.optional(z.string()),
  sort: z.optional(z.enum(VM_SORT_KEYS)),
  order: z.optional(z.enum(["asc", "desc"])),
});
export type CachedQuery = z.infer<typeof cachedQuery>;

/** The filters of a cached vm.list query key ([path, { input, type }]); undefined if it has none readable. */
export function queryOfKey(key: readonly unknown[]): CachedQuery | undefined {
  const parsed = z.object({ input: z.optional(cachedQuery) }).safeParse(key[1]);
  return parsed.success ? (parsed.data.input ?? {}) : undefined;
}

/** What a list filters a row by. */
export type FilteredFields = Pick<VmRow, "name" | "state" | "ownerId" | "hostId" | "imageId" | "poolId" | "tags">;

/** Does this row belong in a list asked for with `query`? As the server filters (server/vms/list.ts). */
export function matchesQuery(row: FilteredFields, query: CachedQuery, myUserId: string): boolean {
  if (query.search && !row.name.includes(query.search.toLowerCase())) return false;
  if (query.state !== undefined && !(Array.isArray(query.state) ? query.state : [query.state]).includes(row.state)) return false;
  const ownerId = query.owner === "mine" ? myUserId : query.owner;
  if (ownerId !== undefined && row.ownerId !== ownerId) return false;
  if (query.hostId !== undefined && row.hostId !== query.hostId) return false;
  if (query.imageId !== undefined && row.imageId !== query.imageId) return false;
  if (query.poolId !== undefined && row.poolId !== query.poolId) return false;
  if (query.tag !== undefined && !row.tags.includes(query.tag.toLowerCase())) return false;
  return true;
}
