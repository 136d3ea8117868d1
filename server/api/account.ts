import { z } from "zod";
import { PASSWORD_LENGTH } from "../../lib/vocabulary.ts";
import { HangarError } from "../errors.ts";
import { actorLabel } from "../auth/permissions.ts";
import { addSshKey, listSshKeys, removeSshKey } from "../auth/ssh-keys.ts";
import { createFirstAdmin, setPassword } from "../auth/users.ts";
import { meOutput, sshKeyListOutput, sshKeyOutput, sshKeyRemovedOutput } from "./outputs.ts";
import { id } from "./schemas.ts";
import { auditChange, procedure, router, restRoutes } from "./trpc.ts";

const rest = restRoutes("account");

/** better-auth's own limits: a longer password could be set but never signed in with. */
export const password = z
  .string()
  .min(PASSWORD_LENGTH.min, `Passwords need at least ${PASSWORD_LENGTH.min} characters.`)
  .max(PASSWORD_LENGTH.max, `Passwords are at most ${PASSWORD_LENGTH.max} characters.`);
export const email = z.email("That is not an email address.").max(254);

export const accountRouter = router({
  /** Who you are, and whether Hangar still needs its first admin. */
  me: procedure
    .meta({ permission: "public", openapi: rest("GET", "/account", "Who the token (or session) acts as; user is null without a valid one") })
    .output(meOutput)
    .query(async ({ ctx }) => ({
      user: ctx.principal ? { ...ctx.principal, label: actorLabel(ctx.principal) } : null,
      needsFirstAdmin: (await ctx.hangar.db.user.count()) === 0,
    })),
  /**
   * First run only: while no user exists, whoever has the setup code (printed in the server
   * log, kept in <state>/setup-code) may create the first admin. No REST route: the /setup page's.
   */
  createFirstAdmin: procedure
    .meta({ permission: "public" })
    .input(
      z.object({
        email,
        name: z.string().min(1, "A name is required.").max(100),
        password,
        setupCode: z.string().max(200, "That is not a setup code.").default(""),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const user = await createFirstAdmin(ctx.hangar.db, ctx.hangar.auth, ctx.hangar.env.stateDir, input);
      await ctx.hangar.recorder.record({
        stream: "audit",
        actor: user.email,
        action: "user-create",
        ok: true,
        message: `First admin ${user.email}`,
        target: user.email,
        userId: user.id,
      });
      return user;
    }),
  /**
   * Your own password, once the current one matches; your other sessions end. No REST route:
   * it is a person's, on the Account page, not a service's (user.setPassword is the admin's).
   */
  changePassword: procedure
    .meta({ permission: "tokens.own" })
    .input(z.object({ currentPassword: z.string().max(256, "That is not your current password."), newPassword: password }))
    .mutation(async ({ ctx, input }) => {
      if (ctx.principal?.via === "token") throw new HangarError("FORBIDDEN", "Change your password signed in, on the Account page; an API token cannot.");
      await setPassword(ctx.hangar.db, ctx.hangar.auth, ctx.principal?.userId ?? "", input.newPassword, {
        current: input.currentPassword,
        keepSessionId: ctx.principal?.sessionId,
      });
      await auditChange(ctx, { action: "password-change", message: "Changed their password; their other sessions ended", target: ctx.principal?.email ?? "" });
      return { changed: true };
    }),
  /** Your SSH public keys: VMs you create or acquire get them for their login user. */
  sshKeys: procedure
    .meta({ permission: "tokens.own", openapi: rest("GET", "/account/ssh-keys", "Your SSH public keys") })
    .output(sshKeyListOutput)
    .query(({ ctx }) => listSshKeys(ctx.hangar.db, ctx.principal?.userId ?? "")),
  /** Adds one OpenSSH public key line; name defaults to the key's comment. */
  addSshKey: procedure
    .meta({
      permission: "tokens.own",
      openapi: rest("POST", "/account/ssh-keys", "Add an SSH public key (one OpenSSH line); VMs you create or acquire get it for their login user"),
    })
    .input(
      z.object({
        publicKey: z.string().max(16 * 1024, "That is too long for a public key."),
        name: z.string().max(100, "Key names are at most 100 characters.").optional(),
      }),
    )
    .output(sshKeyOutput)
    .mutation(async ({ ctx, input }) => {
      const key = await addSshKey(ctx.hangar.db, ctx.principal?.userId ?? "", input);
      await auditChange(ctx, { action: "sshkey-add", message: `Added SSH key ${key.name} (${key.fingerprint})`, target: key.name });
      return key;
    }),
  removeSshKey: procedure
    .meta({ permission: "tokens.own", openapi: rest("POST", "/account/ssh-keys/{id}/delete", "Remove an SSH key of yours") })
    .input(z.object({ id }))
    .output(sshKeyRemovedOutput)
    .mutation(async ({ ctx, input }) => {
      const key = await removeSshKey(ctx.hangar.db, ctx.principal?.userId ?? "", input.id);
      await auditChange(ctx, { action: "sshkey-remove", message: `Removed SSH key ${key.name} (${key.fingerprint})`, target: key.name });
      return key;
    }),
});
