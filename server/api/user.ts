import { z } from "zod";
import { ROLES } from "../auth/permissions.ts";
import { addUser, listUsers, removeUser, setPassword, updateUser } from "../auth/users.ts";
import { email, password } from "./account.ts";
import { userIdOutput, userListOutput, userOutput } from "./outputs.ts";
import { userId } from "./schemas.ts";
import { auditChange, procedure, router, restRoutes } from "./trpc.ts";

const rest = restRoutes("user");

const role = z.enum(ROLES, "role must be admin, operator or viewer.");
const quota = (what: string) => z.number().int(`${what} must be a whole number.`).min(0, `${what} must be 0 or more.`).nullable().optional();

/** Admins manage users; each change is in the audit log. */
export const userRouter = router({
  list: procedure
    .meta({ permission: "admin", openapi: rest("GET", "/users", "Every user, with role and quotas (admins)") })
    .output(userListOutput)
    .query(({ ctx }) => listUsers(ctx.hangar.db)),
  add: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/users", "Add a user with a password and a role (admins)") })
    .input(z.object({ email, name: z.string().min(1, "A name is required.").max(100), password, role }))
    .output(userOutput)
    .mutation(async ({ ctx, input }) => {
      const user = await addUser(ctx.hangar.db, ctx.hangar.auth, input);
      await auditChange(ctx, { action: "user-create", message: `Added ${user.email} as ${user.role}`, target: user.email });
      return user;
    }),
  update: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/users/{id}", "Change a user's role, quotas (null: no limit) or whether they are disabled (admins)") })
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
    .output(userOutput)
    .mutation(async ({ ctx, input }) => {
      const { id, ...change } = input;
      const { user, changed } = await updateUser(ctx.hangar.db, id, change);
      if (changed) await auditChange(ctx, { action: "user-update", message: `Changed ${user.email}: ${changed}`, target: user.email });
      return user;
    }),
  /** A new password for someone who lost theirs; their sessions end. */
  setPassword: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/users/{id}/password", "Set a new password for a user; their sessions end (admins)") })
    .input(z.object({ id: userId, password }))
    .output(userIdOutput)
    .mutation(async ({ ctx, input }) => {
      const user = await setPassword(ctx.hangar.db, ctx.hangar.auth, input.id, input.password);
      await auditChange(ctx, { action: "user-password", message: `Set a new password for ${user.email}; their sessions ended`, target: user.email });
      return { id: input.id };
    }),
  remove: procedure
    .meta({
      permission: "admin",
      openapi: rest("POST", "/users/{id}/delete", "Remove a user, their sessions and tokens; their VMs stay, without an owner (admins)"),
    })
    .input(z.object({ id: userId }))
    .output(userIdOutput)
    .mutation(async ({ ctx, input }) => {
      const user = await removeUser(ctx.hangar.db, input.id);
      await auditChange(ctx, { action: "user-remove", message: `Removed ${user.email}`, target: user.email });
      return { id: input.id };
    }),
});
