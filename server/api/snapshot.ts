import { z } from "zod";
import { changeSnapshot, listSnapshots } from "../vms/snapshots.ts";
import { id } from "./schemas.ts";
import { publicProcedure, router } from "./trpc.ts";

const snapshotName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/, "Snapshot names are 1 to 63 letters, digits, dots, dashes and underscores.")
  .refine((name) => !name.startsWith("hangar-"), "Snapshot names starting with hangar- are reserved.");

const target = z.object({ id, name: snapshotName });

export const snapshotRouter = router({
  list: publicProcedure.input(z.object({ id })).query(({ ctx, input }) => listSnapshots(ctx.hangar, input.id)),
  create: publicProcedure.input(target).mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "create" }, ctx.actor)),
  revert: publicProcedure.input(target).mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "revert" }, ctx.actor)),
  delete: publicProcedure.input(target).mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "delete" }, ctx.actor)),
});
