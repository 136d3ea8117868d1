import { z } from "zod";
import { changeSnapshot, listSnapshots } from "../vms/snapshots.ts";
import { snapshotListOutput } from "./outputs.ts";
import { id } from "./schemas.ts";
import { procedure, router, restRoutes } from "./trpc.ts";

const snapshotName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/, "Snapshot names are 1 to 63 letters, digits, dots, dashes and underscores.")
  .refine((name) => !name.startsWith("hangar-"), "Snapshot names starting with hangar- are reserved.");

const target = z.object({ id, name: snapshotName });

/** Each snapshot route answers the VM's snapshots. */
const rest = restRoutes("snapshot");

export const snapshotRouter = router({
  list: procedure
    .meta({ permission: "read", runsOn: "vm", openapi: rest("GET", "/vms/{id}/snapshots", "A VM's snapshots") })
    .input(z.object({ id }))
    .output(snapshotListOutput)
    .query(({ ctx, input }) => listSnapshots(ctx.hangar, input.id)),
  create: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/snapshots", "Take a snapshot of a Stopped or Running VM") })
    .input(target)
    .output(snapshotListOutput)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "create" }, ctx.actor)),
  revert: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/snapshots/{name}/revert", "Revert a VM to a snapshot") })
    .input(target)
    .output(snapshotListOutput)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "revert" }, ctx.actor)),
  delete: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/snapshots/{name}/delete", "Delete a snapshot") })
    .input(target)
    .output(snapshotListOutput)
    .mutation(({ ctx, input }) => changeSnapshot(ctx.hangar, { ...input, action: "delete" }, ctx.actor)),
});
