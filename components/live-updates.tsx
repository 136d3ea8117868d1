"use client";
/**
 * The one live stream per tab: vm.onChange (SSE). Each change invalidates the VM queries
 * (list, get, events), so React Query refetches what is on screen. No polling.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { useCallback } from "react";
import { useMe } from "./session.tsx";
import { useTRPC } from "./trpc.ts";

export function LiveUpdates() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const refresh = useCallback(() => {
    void queryClient.invalidateQueries(trpc.vm.pathFilter());
    void queryClient.invalidateQueries(trpc.pool.pathFilter());
  }, [queryClient, trpc]);
  const subscription = useSubscription(
    trpc.vm.onChange.subscriptionOptions(undefined, {
      enabled: Boolean(me),
      // After a (re)connect we may have missed changes: catch up once.
      onStarted: refresh,
      onData: refresh,
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
