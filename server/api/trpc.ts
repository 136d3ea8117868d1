/**
 * tRPC plumbing, in three parts. Edit it when you add a kind of procedure or change how
 * errors reach clients; routers live beside it, one per domain.
 *
 * 1. Context: the services and who is asking.
 * 2. Initialisation: superjson, and the one errorFormatter that turns domain errors and
 *    input validation errors into a tRPC code and a sentence a person can act on.
 * 3. Procedures: publicProcedure (authenticated tiers come with accounts).
 */
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError } from "zod";
import { ERROR_CODES, isHangarError, type ErrorCode } from "../errors.ts";
import type { Hangar } from "../hangar.ts";

// 1. Context

export interface Context {
  hangar: Hangar;
  /** Who is asking, as written into events. */
  actor: string;
}

// 2. Initialisation

/** "name: Names are DNS labels…" for each problem of a zod error. */
function describeZodError(error: ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  errorFormatter({ shape, error }) {
    const zod = error.cause instanceof ZodError ? error.cause : undefined;
    const domain = isHangarError(error.cause) ? error.cause.code : undefined;
    return {
      ...shape,
      message: zod ? describeZodError(zod) : shape.message,
      data: { ...shape.data, domainCode: domain ?? null, stack: undefined },
    };
  },
});

/** Domain errors become the tRPC code their enum names, keeping the message. */
const domainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && isHangarError(result.error.cause)) {
    const cause = result.error.cause;
    throw new TRPCError({ code: ERROR_CODES[cause.code as ErrorCode], message: cause.message, cause });
  }
  return result;
});

// 3. Procedures

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(domainErrors);
