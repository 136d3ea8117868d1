import { z } from "zod";
import { ROLES } from "../auth/permissions.ts";
import { addUser, listUsers, removeUser, updateUser } from "../auth/users.ts";
import { email, password } from "./account.ts";
import { userId } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

const role = z.enum(ROLES, "role must be admin, operator or viewer.");
const quota = (what: string) => z.number().int(`${what} must be a whole number.`).min(0, `${what} must be 0 or more.`).nullable().optional();

/** Admins manage users; each change is in the audit log. */
export const userRouter = router({
  list: procedure.meta({ permission: "admin" }).query(({ ctx }) => listUsers(ctx.hangar.db)),
  add: procedure
    .meta({ permission: "admin" })
    .input(z.object({ email, name: z.string().min(1, "A name is required.").max(100), password, role }))
    .mutation(async ({ ctx, input }) => {
      const user = await addUser(ctx.hangar.db, ctx.hangar.auth, input);
      await ctx.hangar.recorder.record({
        stream: "audit",
        actor: ctx.actor,
        action: "user-create",
        ok: true,
        message: `Added ${user.email} as ${user.role}`,
        target: user.email,
        userId: ctx.principal?.userId,
      });
      return user;
    }),
  update: procedure
    .meta({ permission: "admin" })
    .input(
      z.object({
        id: userId,
        role: role.optional(),
        disabled: z.boolean().optional(),
        maxVms: quota("maxVms"),
        maxCpus: quota("maxCpus"),
        maxMemoryMiB: quota("maxMemoryMiB"),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const { id, ...change } = input;
      const user = await updateUser(ctx.hangar.db, id, change);
      await ctx.hangar.recorder.record({
        stream: "audit",
        actor: ctx.actor,
        action: "user-update",
        ok: true,
        message: `Changed ${user.email}: ${JSON.stringify(change)}`,
        target: user.email,
        userId: ctx.principal?.userId,
      });
      return user;
    }),
  remove: procedure
    .meta({ permission: "admin" })
    .input(z.object({ id: userId }))
    .mutation(async ({ ctx, input }) => {
      const user = await removeUser(ctx.hangar.db, input.id);
      await ctx.hangar.recorder.record({
        stream: "audit",
        actor: ctx.actor,
        action: "user-remove",
        ok: true,
        message: `Removed ${user.email}`,
        target: user.email,
        userId: ctx.principal?.userId,
      });
      return { id: input.id };
    }),
});
