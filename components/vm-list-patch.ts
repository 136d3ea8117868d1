/**
 * A live change applied to a cached vm.list answer (its pages, as paged by the table, or
 * the one page of a list without paging): the changed row is replaced where it is, dropped
 * once it is gone or no longer matches the list's filters, and a new row that matches is
 * put first (the table's default order is newest first) or last (the unpaged list is oldest
 * first). Nothing is fetched; a later page may then repeat a row put first, so readers drop
 * repeated ids.
 */
import type { RouterOutputs, VmRow } from "./trpc.ts";
import { matchesQuery, type CachedQuery } from "./vm-filter.ts";

export type VmListPage = RouterOutputs["vm"]["list"];

export interface RowChange {
  vmId: string;
  /** The VM's list row; null once it is gone. */
  row: VmRow | null;
  /** The VM was just created (its first change). */
  created: boolean;
}

/** The pages with the change applied; the same array when the change does not concern them. */
export function patchPages(pages: VmListPage[], change: RowChange, query: CachedQuery, myUserId: string, newRowsAt: "start" | "end"): VmListPage[] {
  const keep = change.row !== null && matchesQuery(change.row, query, myUserId);
  const at = pages.findIndex((page) => page.items.some((row) => row.id === change.vmId));
  const withTotal = (delta: number) => (page: VmListPage) => (delta === 0 ? page : { ...page, total: Math.max(0, page.total + delta) });
  if (at < 0) {
    if (!keep || !change.row || pages.length === 0) return pages;
    // Not loaded is not the same as not listed: with pages still to come, only a VM just
    // created is known to be missing from them (any other may be on a page not read yet).
    const complete = pages[pages.length - 1]?.nextCursor === null;
    if (!complete && !change.created) return pages;
    const row = change.row;
    const target = newRowsAt === "start" ? 0 : pages.length - 1;
    return pages.map((page, index) => {
      const counted = withTotal(1)(page);
      if (index !== target) return counted;
      return { ...counted, items: newRowsAt === "start" ? [row, ...page.items] : [...page.items, row] };
    });
  }
  return pages.map((page, index) => {
    if (index !== at) return keep ? page : withTotal(-1)(page);
    const items =
      keep && change.row
        ? page.items.map((row) => (row.id === change.vmId && change.row ? change.row : row))
        : page.items.filter((row) => row.id !== change.vmId);
    return { ...(keep ? page : withTotal(-1)(page)), items };
  });
}
