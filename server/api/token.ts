import { z } from "zod";
import { createToken, listTokens, revokeToken } from "../auth/tokens.ts";
import { id } from "./schemas.ts";
import { auditChange, procedure, router } from "./trpc.ts";

const tokenName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/, "Token names are 1 to 63 letters, digits, spaces, dots, dashes and underscores.");

/** Each user's own API tokens. The token itself is shown once, by create. */
export const tokenRouter = router({
  list: procedure.meta({ permission: "tokens.own" }).query(({ ctx }) => listTokens(ctx.hangar.db, ctx.principal?.userId ?? "")),
  create: procedure
    .meta({ permission: "tokens.own" })
    .input(
      z.object({
        name: tokenName,
        expiresInDays: z.number().int().min(1, "expiresInDays must be at least 1.").max(3650).optional(),
        /** Reads only (lists, details, events, metrics): every change made with it is refused. */
        readOnly: z.boolean().optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const created = await createToken(ctx.hangar.db, ctx.principal?.userId ?? "", input);
      await auditChange(ctx, {
        action: "token-create",
        message: `Created ${created.readOnly ? "read-only " : ""}token ${created.name} (${created.prefix}…)`,
        target: created.name,
      });
      return created;
    }),
  revoke: procedure
    .meta({ permission: "tokens.own" })
    .input(z.object({ id }))
    .mutation(async ({ ctx, input }) => {
      const token = await revokeToken(ctx.hangar.db, ctx.principal?.userId ?? "", input.id);
      await auditChange(ctx, { action: "token-revoke", message: `Revoked token ${token.name}`, target: token.name });
      return { id: token.id, revokedAt: token.revokedAt };
    }),
});
