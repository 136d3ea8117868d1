"use client";
/**
 * The one live stream per tab: vm.onChange over the tab's WebSocket. Each change carries
 * the VM's list row, patched into every cached list where its filters and order put it
 * (vm-list-patch.ts); only what is on screen for that VM (its page, its events, the pools
 * it is in) is asked for again. No polling, no whole-list fetch per change. A reconnect
 * resumes from the last change seen and is first given what it missed; the lists are read
 * again only when the server says that was not all (and once when the stream first starts,
 * since the page's first lists may have been read before it, unless the page came with them
 * and the point they were read at).
 */
import { useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { useCallback } from "react";
import { signInAgainIfUnauthorized, useMe } from "./session.tsx";
import { httpStatus, useSeedResumePoint } from "./trpc-provider.tsx";
import type { LiveChange } from "@/server/vms/changes.ts";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";
import { queryOfKey } from "./vm-filter.ts";
import { patchPages, type VmListPage } from "./vm-list-patch.ts";

export function LiveUpdates() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const catchUp = useCallback(() => {
    const filters = [trpc.vm.pathFilter(), trpc.pool.pathFilter()];
    // A read still in flight (the page's first list, as the stream opens with it) is let
    // finish and shown, not cancelled and asked again; then all is read once more in the
    // background, since a change made before this stream started was not sent on it.
    const inFlight = filters.flatMap((filter) => queryClient.getQueryCache().findAll(filter)).map((query) => query.promise);
    void Promise.allSettled(inFlight).then(() => {
      for (const filter of filters) void queryClient.invalidateQueries(filter, { cancelRefetch: false });
    });
  }, [queryClient, trpc]);
  const apply = useCallback(
    (change: LiveChange) => {
      if (me) {
        const rowChange = { vmId: change.vmId, row: change.row, before: change.before, created: change.state === "Initial" };
        // Every cached list (each search and filter the table asked for), by its own filters.
        for (const [key, data] of queryClient.getQueriesData<InfiniteData<VmListPage, unknown>>({ queryKey: trpc.vm.list.infiniteQueryKey() })) {
          const query = queryOfKey(key);
          if (!data || !query) continue;
          const pages = patchPages(data.pages, rowChange, query, me.userId);
          if (pages !== data.pages) queryClient.setQueryData(key, { ...data, pages });
        }
        for (const [key, data] of queryClient.getQueriesData<VmListPage>({ queryKey: trpc.vm.list.queryKey() })) {
          const query = queryOfKey(key);
          if (!data || !query || !("items" in data)) continue;
          const [page] = patchPages([data], rowChange, query, me.userId);
          if (page && page !== data) queryClient.setQueryData(key, page);
        }
      }
      // A list read under way was answered before this change and lands after the patch, over
      // it: each such list is read again once its read lands.
      const reading = queryClient
        .getQueryCache()
        .findAll(trpc.vm.list.pathFilter())
        .filter((query) => query.state.fetchStatus === "fetching");
      for (const query of reading) {
        void Promise.allSettled([query.promise]).then(() => queryClient.invalidateQueries({ queryKey: query.queryKey, exact: true }));
      }
      void refreshVm(queryClient, trpc, change.vmId);
      // Pools list their members: only a pool member's change (or a deletion, which may be one) touches them.
      if (!change.row || change.row.poolId) void queryClient.invalidateQueries(trpc.pool.pathFilter());
    },
    [queryClient, trpc, me],
  );
  // A page that came with its first list starts from that read: what changed since is sent,
  // and the lists are not read again.
  const resumeFrom = useSeedResumePoint();
  const subscription = useSubscription(
    trpc.vm.onChange.subscriptionOptions(resumeFrom ? { lastEventId: resumeFrom } : undefined, {
      enabled: Boolean(me),
      onData: ({ data }) => {
        if (!("caughtUp" in data)) apply(data);
        else if (!data.caughtUp) catchUp();
      },
      // Signed out in another tab (or the session ended): the socket reconnects as nobody and
      // the stream is refused; the tab goes to sign-in rather than show "reconnecting" for good.
      onError: (error) => signInAgainIfUnauthorized(httpStatus(error)),
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
