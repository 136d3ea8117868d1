/**
 * What the inventory table asks vm.list for (search, filters, sort), and the same filter
 * applied to one row: a live change keeps, drops or adds a row in a cached list by this
 * test, so a patched list holds what asking the server again would hold.
 */
import { VM_LIST_PAGE_SIZE, VM_SORT_KEYS, firstVmListQuery, type VmSortKey } from "../lib/vocabulary.ts";
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
export interface CachedQuery {
  search?: string;
  state?: string | string[];
  owner?: string;
  hostId?: string;
  imageId?: string;
  poolId?: string;
  tag?: string;
  sort?: VmSortKey;
  order?: "asc" | "desc";
}

const TEXT_FIELDS = ["search", "owner", "hostId", "imageId", "poolId", "tag"] as const;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
/** One of vm.list's sort keys (the ids of the table's sortable columns). */
export const isSortKey = (value: unknown): value is VmSortKey => VM_SORT_KEYS.some((key) => key === value);

/**
 * The filters of a cached vm.list query key ([path, { input, type }]); undefined if it has
 * none readable. Read by hand, not with zod: the keys are this tab's own, and zod's code was
 * the biggest part of what the inventory page loads besides React, Next and its tables.
 */
export function queryOfKey(key: readonly unknown[]): CachedQuery | undefined {
  const options = key[1];
  if (!isRecord(options)) return undefined;
  const input = options.input;
  if (input === undefined) return {};
  if (!isRecord(input)) return undefined;
  const query: CachedQuery = {};
  for (const field of TEXT_FIELDS) {
    const value = input[field];
    if (value === undefined) continue;
    if (typeof value !== "string") return undefined;
    query[field] = value;
  }
  const { state, sort, order } = input;
  if (state !== undefined) {
    if (typeof state !== "string" && !(Array.isArray(state) && state.every((one) => typeof one === "string"))) return undefined;
    query.state = state;
  }
  if (sort !== undefined) {
    if (!isSortKey(sort)) return undefined;
    query.sort = sort;
  }
  if (order !== undefined) {
    if (order !== "asc" && order !== "desc") return undefined;
    query.order = order;
  }
  return query;
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
