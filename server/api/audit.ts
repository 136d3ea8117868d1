import { z } from "zod";
import { procedure, router } from "./trpc.ts";

/** The audit log: every event, filtered by VM, user or action, newest first, in pages. */
export const auditRouter = router({
  list: procedure
    .meta({ permission: "admin" })
    .input(
      z.object({
        vmId: z.string().max(64).optional(),
        userId: z.string().max(64).optional(),
        action: z.string().max(64).optional(),
        limit: z.number().int().min(1).max(200).default(50),
        cursor: z.string().max(64).optional(),
      }),
    )
    .query(async ({ ctx, input }) => {
      const events = await ctx.hangar.db.event.findMany({
        where: {
          ...(input.vmId ? { vmId: input.vmId } : {}),
          ...(input.userId ? { userId: input.userId } : {}),
          ...(input.action ? { action: input.action } : {}),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: input.limit + 1,
        ...(input.cursor ? { cursor: { id: input.cursor }, skip: 1 } : {}),
      });
      const page = events.slice(0, input.limit);
      return { events: page, nextCursor: events.length > input.limit ? page[page.length - 1]?.id : undefined };
    }),
});

export const hostRouter = router({
  list: procedure.meta({ permission: "read" }).query(({ ctx }) => ctx.hangar.hosts.list()),
});
