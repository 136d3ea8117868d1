/**
 * A live change applied to a cached vm.list answer (its pages, as paged by the table, or
 * the one page of a list without paging): the changed row leaves where it was and goes where
 * the list's order puts it now (a rename under a sort by name, a start under a sort by
 * state), or nowhere once it is gone, no longer matches the list's filters, or sorts past the
 * pages read so far (a later page brings it). The count follows whether the VM matched before
 * and matches now. Nothing is fetched; a later page may still repeat a row placed here, so
 * readers drop repeated ids.
 */
import { compareVmSortKeys, vmSortKey } from "../lib/vocabulary.ts";
import type { RouterOutputs, VmRow } from "./trpc.ts";
import { matchesQuery, type CachedQuery, type FilteredFields } from "./vm-filter.ts";

export type VmListPage = RouterOutputs["vm"]["list"];

export interface RowChange {
  vmId: string;
  /** The VM's list row; null once it is gone. */
  row: VmRow | null;
  /** What the VM was filtered by before this change; null when the server did not know. */
  before: FilteredFields | null;
  /** The VM was just created (its first change). */
  created: boolean;
}

/** The pages with the change applied; the same array when the change does not concern them. */
export function patchPages(pages: VmListPage[], change: RowChange, query: CachedQuery, myUserId: string): VmListPage[] {
  if (pages.length === 0) return pages;
  // vm.list's defaults: oldest first.
  const sort = query.sort ?? "created";
  const direction = query.order === "desc" ? -1 : 1;
  const listed = pages.some((page) => page.items.some((row) => row.id === change.vmId));
  const complete = pages[pages.length - 1]?.nextCursor === null;
  const matches = change.row !== null && matchesQuery(change.row, query, myUserId);
  // Was it counted? A loaded row was; with every page read, a row not among them was not; a
  // VM just made was not; else the row it had before says (not known: counted as it is now).
  const matched = listed || (!complete && !change.created && (change.before ? matchesQuery(change.before, query, myUserId) : matches));
  const delta = (matches ? 1 : 0) - (matched ? 1 : 0);

  // Where it goes: before the first loaded row that sorts after it; past them all, at the end
  // of a complete list, or onto a page not read yet.
  const others = listed ? pages.map((page) => page.items.filter((row) => row.id !== change.vmId)) : pages.map((page) => page.items);
  let target: { page: number; index: number } | undefined;
  if (change.row && matches) {
    const key = vmSortKey(change.row, sort);
    for (const [page, items] of others.entries()) {
      const index = items.findIndex((row) => compareVmSortKeys(key, vmSortKey(row, sort), direction) < 0);
      if (index >= 0) {
        target = { page, index };
        break;
      }
    }
    if (!target && complete) target = { page: others.length - 1, index: others[others.length - 1]?.length ?? 0 };
  }
  if (!listed && !target && delta === 0) return pages;
  return pages.map((page, at) => {
    const kept = others[at] ?? page.items;
    const items = target && change.row && at === target.page ? [...kept.slice(0, target.index), change.row, ...kept.slice(target.index)] : kept;
    const total = Math.max(0, page.total + delta);
    if (items.length === page.items.length && items.every((row, i) => row === page.items[i]) && total === page.total) return page;
    return { ...page, items, total };
  });
}
