/**
 * Reads a VM's page (vm.get) and its events again after a change to it. A query whose first
 * read is still under way was asked before the change, and TanStack Query folds a refetch
 * into a first read rather than cancel it: such a query is read again once that read lands,
 * or the page would keep showing the VM as it was.
 */
import type { QueryClient, QueryFilters } from "@tanstack/react-query";
import type { useTRPC } from "./trpc.ts";

export async function refreshQueries(queryClient: QueryClient, filter: QueryFilters): Promise<void> {
  const firstReads = queryClient
    .getQueryCache()
    .findAll(filter)
    .filter((query) => query.state.data === undefined && query.state.fetchStatus === "fetching")
    .map((query) => query.promise);
  await queryClient.invalidateQueries(filter);
  if (firstReads.length === 0) return;
  await Promise.allSettled(firstReads);
  await queryClient.invalidateQueries(filter);
}

export function refreshVm(queryClient: QueryClient, trpc: ReturnType<typeof useTRPC>, vmId: string): Promise<unknown> {
  return Promise.all([refreshQueries(queryClient, trpc.vm.get.queryFilter({ id: vmId })), refreshQueries(queryClient, trpc.vm.events.queryFilter({ vmId }))]);
}
