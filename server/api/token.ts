import { z } from "zod";
import { createToken, listTokens, revokeToken } from "../auth/tokens.ts";
import { createdTokenOutput, revokedTokenOutput, tokenListOutput } from "./outputs.ts";
import { id } from "./schemas.ts";
import { auditChange, procedure, router, restRoutes } from "./trpc.ts";

const rest = restRoutes("token");

const tokenName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/, "Token names are 1 to 63 letters, digits, spaces, dots, dashes and underscores.");

/** Each user's own API tokens. The token itself is shown once, by create. */
export const tokenRouter = router({
  list: procedure
    .meta({ permission: "tokens.own", openapi: rest("GET", "/tokens", "Your API tokens (never the tokens themselves)") })
    .output(tokenListOutput)
    .query(({ ctx }) => listTokens(ctx.hangar.db, ctx.principal?.userId ?? "")),
  /** A read-only token changes nothing, so it makes no token either (api/trpc.ts refuses its mutations). */
  create: procedure
    .meta({ permission: "tokens.own", openapi: rest("POST", "/tokens", "Make an API token of yours; the answer holds the token, shown this once") })
    .input(
      z.object({
        name: tokenName,
        expiresInDays: z.number().int().min(1, "expiresInDays must be at least 1.").max(3650).optional(),
        /** Reads only (lists, details, events, metrics): every change made with it is refused. */
        readOnly: z.boolean().optional(),
      }),
    )
    .output(createdTokenOutput)
    .mutation(async ({ ctx, input }) => {
      const created = await createToken(ctx.hangar.db, ctx.principal?.userId ?? "", input, ctx.principal?.tokenId);
      await auditChange(ctx, {
        action: "token-create",
        message: `Created ${created.readOnly ? "read-only " : ""}token ${created.name} (${created.prefix}…)`,
        target: created.name,
      });
      return created;
    }),
  revoke: procedure
    .meta({ permission: "tokens.own", openapi: rest("POST", "/tokens/{id}/revoke", "Revoke a token of yours; it stops working at once") })
    .input(z.object({ id }))
    .output(revokedTokenOutput)
    .mutation(async ({ ctx, input }) => {
      const token = await revokeToken(ctx.hangar.db, ctx.principal?.userId ?? "", input.id);
      await auditChange(ctx, { action: "token-revoke", message: `Revoked token ${token.name}`, target: token.name });
      return { id: token.id, revokedAt: token.revokedAt };
    }),
});
