import { z } from "zod";
import { changeSnapshot, listSnapshots } from "../vms/snapshots.ts";
import { id } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

const snapshotName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/, "Snapshot names are 1 to 63 letters, digits, dots, dashes and underscores.")
  .refine((name) => !name.startsWith("hangar-"), "Snapshot names starting with hangar- are reserved.");

const target = z.object({ id, name: snapshotName });

export const snapshotRouter = router({
  list: procedure
    .meta({ permission: "read", runsOn: "vm" })
    .input(z.object({ id }))
    .query(({ ctx, input }) => listSnapshots(ctx.hangar, input.id)),
  create: procedure
    .meta({ permission: "vm.control", runsOn: "vm" })
    .input(target)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "create" }, ctx.actor)),
  revert: procedure
    .meta({ permission: "vm.control", runsOn: "vm" })
    .input(target)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "revert" }, ctx.actor)),
  delete: procedure
    .meta({ permission: "vm.control", runsOn: "vm" })
    .input(target)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "delete" }, ctx.actor)),
});
