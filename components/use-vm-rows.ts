"use client";
/**
 * The rows the inventory table shows for a search, filters and sort. The list stays in the
 * cache that live changes patch (components/live-updates.tsx); here it is narrowed and
 * ordered by the same rule the patching uses (vm-filter.ts).
 */
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { useTRPC, type VmRow } from "./trpc.ts";
import { compareRows, matchesFilter, type VmFilter, type VmSort } from "./vm-filter.ts";

export interface VmRows {
  rows: VmRow[];
  /** How many VMs match. */
  total: number;
  /** How many VMs there are. */
  inventory: number;
  isPending: boolean;
  error: unknown;
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => void;
}

const noMorePages = () => undefined;

export function useVmRows(filter: VmFilter, sort: VmSort, myUserId: string): VmRows {
  const trpc = useTRPC();
  const list = useQuery(trpc.vm.list.queryOptions());
  const rows = useMemo(
    () => (list.data ?? []).filter((row) => matchesFilter(row, filter, myUserId)).sort((a, b) => compareRows(a, b, sort)),
    [list.data, filter, sort, myUserId],
  );
  return {
    rows,
    total: rows.length,
    inventory: list.data?.length ?? 0,
    isPending: list.isPending,
    error: list.error,
    hasNextPage: false,
    isFetchingNextPage: false,
    fetchNextPage: noMorePages,
  };
}
