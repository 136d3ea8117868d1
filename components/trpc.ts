/** The typed tRPC hooks for the dashboard: `useTRPC()` inside `<TRPCProvider>`. */
import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root.ts";

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type VmRow = RouterOutputs["vm"]["list"]["items"][number];
export type VmDetail = RouterOutputs["vm"]["get"];
export type VmEvent = RouterOutputs["vm"]["events"]["events"][number];
export type ImageRow = RouterOutputs["image"]["list"][number];
/** The lifecycle actions this dashboard offers a button for (Clone has its own form). */
export type ButtonAction = "Start" | "Stop" | "Suspend" | "Delete";
export type SnapshotRow = RouterOutputs["snapshot"]["list"][number];
export type PoolRow = RouterOutputs["pool"]["list"][number];
