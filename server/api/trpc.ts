/**
 * tRPC plumbing, in three parts. Edit it when you add a kind of procedure or change how
 * errors reach clients; routers live beside it, one per domain.
 *
 * 1. Context: the services, who is asking (a session cookie or an API token), and how the
 *    call arrived (an HTTP request, or code in this process).
 * 2. Initialisation: superjson, and the one errorFormatter that turns domain errors and
 *    input validation errors into a tRPC code and a sentence a person can act on.
 * 3. Procedures: one `procedure`; each declares the permission it needs in its meta
 *    (server/auth/permissions.ts), which one middleware enforces. A procedure without
 *    one is refused, and a test walks the router to keep it so. Before that, a mutation
 *    sent over HTTP without a Bearer token must come from an allowed origin (CSRF).
 */
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError } from "zod";
import { originAllowed } from "../origins.ts";
import { atLeast, canControlVm, refusal, type Permission, type Principal } from "../auth/permissions.ts";
import { ERROR_CODES, HangarError, isHangarError, type ErrorCode } from "../errors.ts";
import type { Hangar } from "../hangar.ts";

// 1. Context

/**
 * How a call arrived. "http": a request to /api/trpc, with the headers the cross-site check
 * reads (client-sent, so only ever compared with Hangar's configured origins). "in-process":
 * a caller that code in this process built with createCaller (tests, benchmarks); the HTTP
 * handler never makes one, so no request can claim to be one.
 */
export type Transport =
  | { kind: "http"; origin: string | undefined; fetchSite: string | undefined; bearer: boolean }
  | { kind: "in-process" };

export const IN_PROCESS: Transport = { kind: "in-process" };

export interface Context {
  hangar: Hangar;
  transport: Transport;
  /** Who is asking; null when nobody signed in and no token came. */
  principal: Principal | null;
  /** Who is asking, as written into events. */
  actor: string;
}

export interface Meta {
  permission: Permission;
  /** For "vm.control": the input field that holds the VM's id (default "id"). */
  vmInput?: "id" | "vmId";
}

// 2. Initialisation

/** "name: Names are DNS labels…" for each problem of a zod error. */
function describeZodError(error: ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

const t = initTRPC.context<Context>().meta<Meta>().create({
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

/**
 * A browser attaches the session cookie to requests that other sites make it send, so a
 * mutation carrying no Bearer token (which no other site can make a browser add) must name
 * an allowed Origin, or, when a browser sends no Origin, come with Sec-Fetch-Site: same-origin.
 */
const sameOriginMutations = t.middleware(({ ctx, type, next }) => {
  if (type !== "mutation" || ctx.transport.kind === "in-process" || ctx.transport.bearer) return next();
  const { origin, fetchSite } = ctx.transport;
  const allowed = origin === undefined ? fetchSite === "same-origin" : originAllowed(origin, ctx.hangar.env.allowedOrigins);
  if (!allowed) {
    throw new HangarError(
      "FORBIDDEN",
      "This change came from a page of another site; use Hangar's own pages, or an API token (Authorization: Bearer) from a service.",
    );
  }
  return next();
});

const enforcePermission = t.middleware(async ({ ctx, meta, getRawInput, next }) => {
  if (!meta) throw new HangarError("FORBIDDEN", "This procedure declares no permission, so nobody may call it.");
  if (meta.permission === "public") return next();
  const principal = ctx.principal;
  if (!principal) throw new HangarError("UNAUTHENTICATED", "Sign in first, or send an API token as Authorization: Bearer <token>.");
  const allowed = await (async () => {
    switch (meta.permission) {
      case "read":
      case "tokens.own":
        return true;
      case "vm.create":
      case "pool.use":
        return atLeast(principal, "operator");
      case "pool.manage":
      case "admin":
        return principal.role === "admin";
      case "vm.control": {
        if (!atLeast(principal, "operator")) return false;
        const raw = (await getRawInput()) as Record<string, unknown> | undefined;
        const vmId = raw?.[meta.vmInput ?? "id"];
        if (typeof vmId !== "string") return true;
        const vm = await ctx.hangar.db.vm.findUnique({ where: { id: vmId }, select: { ownerId: true } });
        // A missing VM is the procedure's NOT_FOUND to report.
        return !vm || canControlVm(principal, vm);
      }
    }
  })();
  if (!allowed) throw new HangarError("FORBIDDEN", refusal(meta.permission));
  return next({ ctx: { principal } });
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
/** Every procedure starts here and sets `.meta({ permission })`. */
export const procedure = t.procedure.use(domainErrors).use(sameOriginMutations).use(enforcePermission);
