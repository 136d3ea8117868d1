"use client";
/**
 * The rows the inventory table shows for a search, filters and sort: vm.list pages, asked
 * for as the table scrolls toward the end of what it has. The pages stay in the cache that
 * live changes patch (components/live-updates.tsx).
 */
import { useInfiniteQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { useTRPC, type VmRow } from "./trpc.ts";
import { listQuery, nextPageCursor, type VmFilter, type VmSort } from "./vm-filter.ts";

export interface VmRows {
  rows: VmRow[];
  /** How many VMs match. */
  total: number;
  isPending: boolean;
  /** The rows are those of the previous search or filters while the new ones are read. */
  isUpdating: boolean;
  error: unknown;
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => void;
}

export function useVmRows(filter: VmFilter, sort: VmSort): VmRows {
  const trpc = useTRPC();
  const list = useInfiniteQuery(
    trpc.vm.list.infiniteQueryOptions(listQuery(filter, sort), {
      getNextPageParam: nextPageCursor,
      // A new search shows the old rows until its own arrive, instead of an empty table.
      placeholderData: (previous) => previous,
    }),
  );
  const rows = useMemo(() => {
    // A row a live change put first may come again on a later page: show it once.
    const seen = new Set<string>();
    return (list.data?.pages ?? []).flatMap((page) =>
      page.items.filter((row) => {
        if (seen.has(row.id)) return false;
        seen.add(row.id);
        return true;
      }),
    );
  }, [list.data]);
  const { fetchNextPage } = list;
  return {
    rows,
    total: list.data?.pages[0]?.total ?? 0,
    isPending: list.isPending,
    isUpdating: list.isPlaceholderData,
    error: list.error,
    hasNextPage: list.hasNextPage,
    isFetchingNextPage: list.isFetchingNextPage,
    fetchNextPage: useMemo(() => () => void fetchNextPage(), [fetchNextPage]),
  };
}
