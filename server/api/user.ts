import { z } from "zod";
import { ROLES } from "../auth/permissions.ts";
import { addUser, listUsers, removeUser, setPassword, updateUser } from "../auth/users.ts";
import { email, password } from "./account.ts";
import { userId } from "./schemas.ts";
import { auditChange, procedure, router } from "./trpc.ts";

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
      await auditChange(ctx, { action: "user-create", message: `Added ${user.email} as ${user.role}`, target: user.email });
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
      const { user, changed } = await updateUser(ctx.hangar.db, id, change);
      if (changed) await auditChange(ctx, { action: "user-update", message: `Changed ${user.email}: ${changed}`, target: user.email });
      return user;
    }),
  /** A new password for someone who lost theirs; their sessions end. */
  setPassword: procedure
    .meta({ permission: "admin" })
    .input(z.object({ id: userId, password }))
    .mutation(async ({ ctx, input }) => {
      const user = await setPassword(ctx.hangar.db, ctx.hangar.auth, input.id, input.password);
      await auditChange(ctx, { action: "user-password", message: `Set a new password for ${user.email}; their sessions ended`, target: user.email });
      return { id: input.id };
    }),
  remove: procedure
    .meta({ permission: "admin" })
    .input(z.object({ id: userId }))
    .mutation(async ({ ctx, input }) => {
      const user = await removeUser(ctx.hangar.db, input.id);
      await auditChange(ctx, { action: "user-remove", message: `Removed ${user.email}`, target: user.email });
      return { id: input.id };
    }),
});
