"use client";
/**
 * The one live stream per tab: vm.onChange over the tab's WebSocket. Each change carries
 * the VM's list row, patched into the cached list in place; only what is on screen for that
 * VM (its page, its events, the pools) is asked for again. No polling, no whole-list fetch
 * per change. After a (re)connect the list is read once, since changes may have been missed.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { useCallback } from "react";
import { useMe } from "./session.tsx";
import type { inferRouterOutputs } from "@trpc/server";
import type { LiveChange } from "@/server/vms/changes.ts";
import { useTRPC } from "./trpc.ts";

export function LiveUpdates() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const catchUp = useCallback(() => {
    void queryClient.invalidateQueries(trpc.vm.pathFilter());
    void queryClient.invalidateQueries(trpc.pool.pathFilter());
  }, [queryClient, trpc]);
  const apply = useCallback(
    (change: LiveChange) => {
      queryClient.setQueryData(trpc.vm.list.queryKey(), (page) => {
        if (!page) return page;
        const rows = page.items;
        const index = rows.findIndex((row) => row.id === change.vmId);
        if (!change.row) return index < 0 ? page : { ...page, items: rows.filter((row) => row.id !== change.vmId), total: page.total - 1 };
        const next = rows.slice();
        if (index < 0) next.push(change.row);
        else next[index] = change.row;
        return { ...page, items: next, total: page.total + (index < 0 ? 1 : 0) };
      });
      void queryClient.invalidateQueries(trpc.vm.get.queryFilter({ id: change.vmId }));
      void queryClient.invalidateQueries(trpc.vm.events.queryFilter({ vmId: change.vmId }));
      // Pools list their members: only a pool member's change (or a deletion, which may be one) touches them.
      if (!change.row || change.row.poolId) void queryClient.invalidateQueries(trpc.pool.pathFilter());
    },
    [queryClient, trpc],
  );
  const subscription = useSubscription(
    trpc.vm.onChange.subscriptionOptions(undefined, {
      enabled: Boolean(me),
      onStarted: catchUp,
      onData: (tracked) => apply(tracked.data),
    }),
  );
  if (!me) return null;
  const live = subscription.status === "pending";
  return (
    <span className={`live ${live ? "live-on" : "live-off"}`} title={live ? "Live updates on" : "Reconnecting to live updates"}>
      {live ? "live" : "reconnecting…"}
    </span>
  );
}
