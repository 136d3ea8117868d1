import { z } from "zod";
import { STREAMS, listEvents } from "../audit/recorder.ts";
import { id, userId, vmName } from "./schemas.ts";
import { eventPageOutput } from "./outputs.ts";
import { procedure, router } from "./trpc.ts";

/**
 * The audit log: every event of both streams (VM events and audit entries), filtered by
 * stream, VM, user or action, newest first, in pages.
 */
export const auditRouter = router({
  list: procedure
    .meta({
      permission: "admin",
      openapi: {
        method: "GET",
        path: "/audit",
        summary: "The audit log: VM events and audit entries, newest first, in pages (admins)",
        protect: true,
        tags: ["audit"],
      },
    })
    .input(
      z.object({
        stream: z.enum(STREAMS, "stream must be vm or audit.").optional(),
        vmId: id.optional(),
        /** By name, so a deleted VM's events are found too (they keep its name, not its id). */
        vmName: vmName.optional(),
        userId: userId.optional(),
        action: z
          .string()
          .max(64)
          .regex(/^[A-Za-z-]*$/, "action is letters and dashes, e.g. sign-in.")
          .transform((action) => action.toLowerCase())
          .optional(),
        limit: z.number().int().min(1).max(200).default(50),
        cursor: id.optional(),
      }),
    )
    .output(eventPageOutput)
    .query(({ ctx, input }) =>
      // A filter left undefined filters nothing (Prisma); an empty action is none given.
      listEvents(
        ctx.hangar.db,
        { stream: input.stream, vmId: input.vmId, vmName: input.vmName, userId: input.userId, action: input.action || undefined },
        input,
      ),
    ),
  /** Every VM name the log mentions, deleted VMs' included, for the VM filter. */
  vmNames: procedure.meta({ permission: "admin" }).query(async ({ ctx }) => {
    const names = await ctx.hangar.db.event.groupBy({ by: ["vmName"], where: { vmName: { not: null } }, orderBy: { vmName: "asc" } });
    return names.flatMap(({ vmName }) => (vmName ? [vmName] : []));
  }),
});
