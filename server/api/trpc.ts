/**
 * tRPC plumbing, in three parts. Edit it when you add a kind of procedure or change how
 * errors reach clients; routers live beside it, one per domain.
 *
 * 1. Context: the services, who is asking (a session cookie or an API token), and how the
 *    call arrived (an HTTP request, or code in this process).
 * 2. Initialisation: superjson, and the one place (publicError, used by the first middleware
 *    and, for errors raised outside procedures, the errorFormatter) that turns domain errors,
 *    input validation errors and lost unique races into a tRPC code and a sentence a person
 *    can act on. Anything else is "internal error <id>" to the caller and the whole error,
 *    with that id, in the server log. No message carries a host path, argv or SQL.
 * 3. Procedures: one `procedure`. Each call first gets a request id (its log lines and
 *    events carry it) and, unless a subscription, a latency timer for /metrics. Then its raw input must be text a
 *    database can hold (well-formed Unicode, no NUL), a subscription must come over the WebSocket,
 *    the caller of a WebSocket is read again, and a mutation sent over HTTP without
 *    a Bearer token must come from an allowed origin (CSRF). Each declares the permission it
 *    needs in its meta (server/auth/permissions.ts), which one middleware enforces. A
 *    procedure without one is refused, and a test walks the router to keep it so. A
 *    procedure whose meta says where it runs (`runsOn`) is then run on that host: here, or
 *    forwarded to the VM's (or pool's, or placed) host through server/cluster/, or refused
 *    with HOST_OFFLINE while that host is offline.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import { encodeCall } from "../cluster/calls.ts";
import { ForwardedFailure, type Location } from "../cluster/cluster.ts";
import { originAllowed } from "../origins.ts";
import { actorLabel, atLeast, canControlVm, refusal, type Permission, type Principal } from "../auth/permissions.ts";
import { ERROR_CODES, HangarError, fromDatabaseError, isHangarError, withoutHostPaths, type ErrorCode } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { logger, withCaller, withRequestId } from "../log.ts";
import { id, malformedText } from "./schemas.ts";

// 1. Context

/**
 * How a call arrived. "http": a request to /api/trpc, with the headers the cross-site check
 * reads (client-sent, so only ever compared with Hangar's configured origins). "in-process":
 * a caller that code in this process built with createCaller (tests, benchmarks); the HTTP
 * handler never makes one, so no request can claim to be one.
 */
export type Transport =
  | { kind: "http"; origin: string | undefined; fetchSite: string | undefined; bearer: boolean }
  | { kind: "in-process" }
  /** A call another host forwarded here as a job (server/cluster/serve.ts), already checked there. */
  | { kind: "forwarded" };

export const IN_PROCESS: Transport = { kind: "in-process" };

export interface Context {
  /**
   * The services. @internal: left out of the client's declarations (client/tsconfig.json,
   * stripInternal), which would otherwise pull in every server library's types.
   */
  hangar: Hangar;
  transport: Transport;
  /** Who is asking; null when nobody signed in and no token came. */
  principal: Principal | null;
  /** Who is asking, as written into events. */
  actor: string;
  /**
   * Who is asking now, for a connection that outlives a call (the WebSocket): asked again at
   * each call, since a token can be revoked, or a user disabled or demoted, while it stays open.
   */
  recheck?: () => Promise<Principal | null>;
}

/**
 * The part of trpc-to-openapi's route meta Hangar uses, written out: the declarations
 * `hangar/client` ships name this type, and that library's own declarations (its express,
 * koa and Next adapters) do not type-check in another project without skipLibCheck.
 */
type OpenApiRoute = {
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  path: `/${string}`;
  summary?: string;
  description?: string;
  protect?: boolean;
  tags?: string[];
};

/** The REST routes of one router, grouped under `tag` in the document (server/api/openapi.ts). */
export function restRoutes(tag: string) {
  return (method: "GET" | "POST", path: `/${string}`, summary: string): OpenApiRoute => ({ method, path, summary, protect: true, tags: [tag] });
}

// A type, not an interface: trpc-to-openapi wants meta assignable to a string-keyed record.
export type Meta = {
  permission: Permission;
  /** For "vm.control" and runsOn "vm": the input field that holds the VM's id (default "id"). */
  vmInput?: "id" | "vmId";
  /** Its REST route under /api/v1 (server/api/openapi.ts): queries GET, mutations POST. */
  openapi?: OpenApiRoute;
  /**
   * Where the procedure runs when several hosts share the database: on the host of the VM
   * (`vmInput`) or of the pool (`poolInput`), or on the host placement picks for a new VM or
   * pool (input `hostId` and `memoryMiB`), or on the host input `id` names. Without it, on the
   * host that was called.
   */
  runsOn?: "vm" | "pool" | "placement" | "host";
  /** For runsOn "pool": the input field that holds the pool's id (default "id"). */
  poolInput?: "id" | "poolId";
  /** A read that answers from the database here while the VM's host is offline, instead of refusing. */
  whenOffline?: "answer-here";
  /** How long a forwarded call of it may take when its input has no timeoutSec (default 120 s). */
  forwardBudgetSec?: number;
};

// 2. Initialisation

/** "name: Names are DNS labels…" for each problem of a zod error (the first few of many). */
function describeZodError(error: ZodError): string {
  const shown = 5;
  const problems = error.issues
    .slice(0, shown)
    .map((issue) => {
      if (issue.path.length === 0) return issue.message;
      const where = issue.path.join(".");
      // zod's own words for a field left out: "Invalid input: expected number, received undefined".
      if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) return `${where} is required (${issue.expected}).`;
      // "diskGiB must be…" names its field already: "ports.1.hostPort must be…", not "…: hostPort must be…".
      const field = String(issue.path.at(-1));
      return issue.message.startsWith(`${field} `) ? `${where}${issue.message.slice(field.length)}` : `${where}: ${issue.message}`;
    })
    // Each its own sentence: "hostPort must be 0 to 65535. guestPort 22 is SSH's…".
    .map((problem) => (/[.!?]$/.test(problem) ? problem : `${problem}.`))
    .join(" ");
  const more = error.issues.length - shown;
  return more > 0 ? `${problems} And ${more} more problem${more === 1 ? "" : "s"}.` : problems;
}

/** The sentence for a request tRPC could not read: not JSON, superjson "meta" naming what it cannot make, a WebSocket message of no call. */
export const UNREADABLE_INPUT = `The request's input is not JSON as tRPC's client writes it (superjson); send {"json": <input>}.`;

/** Errors already made safe for callers (and logged when they needed to be). */
const published = new WeakSet<TRPCError>();

/**
 * The error a caller sees. Domain errors get their code's tRPC code and their sentence; input
 * errors the schema's sentences; a unique constraint lost in a race is CONFLICT. Anything else
 * unexpected becomes "internal error <id>", and the log gets the id, the procedure and the
 * whole error. A driver failure keeps its sentence for the caller; its cause goes to the log.
 */
function publicError(error: TRPCError, path: string | undefined): TRPCError {
  if (published.has(error)) return error;
  const where = path ?? "(no procedure)";
  const cause = error.cause;
  const domain = isHangarError(cause) ? cause : fromDatabaseError(cause);
  let safe: TRPCError;
  if (domain) {
    if (domain.code === "DRIVER_FAILED") logger.error({ err: domain.cause ?? domain, procedure: where }, domain.message);
    safe = new TRPCError({ code: ERROR_CODES[domain.code as ErrorCode], message: withoutHostPaths(domain.message), cause: domain });
  } else if (cause instanceof ZodError) {
    // Input the schema refuses is INVALID_INPUT, as the domain's own refusals of input are.
    safe = new TRPCError({
      code: "BAD_REQUEST",
      message: describeZodError(cause),
      cause: new HangarError("INVALID_INPUT", describeZodError(cause), { cause }),
    });
  } else if ((error.code === "BAD_REQUEST" || error.code === "PARSE_ERROR") && cause instanceof Error && !(cause instanceof TRPCError)) {
    // tRPC could not read the request (JSON.parse, superjson; a WebSocket message) and took the
    // thrown error's own words: "Maximum call stack size exceeded", "Cannot destructure property 'json' of 'payload'…".
    safe = new TRPCError({ code: error.code, message: UNREADABLE_INPUT, cause: new HangarError("INVALID_INPUT", UNREADABLE_INPUT, { cause }) });
  } else if (error.code !== "INTERNAL_SERVER_ERROR") {
    safe = new TRPCError({ code: error.code, message: withoutHostPaths(error.message) || "The request was refused.", cause });
  } else {
    const incident = randomBytes(4).toString("hex");
    logger.error({ err: cause ?? error, procedure: where, incident }, `internal error ${incident} in ${where}`);
    safe = new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `internal error ${incident}` });
  }
  published.add(safe);
  return safe;
}

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    transformer: superjson,
    errorFormatter({ shape, error, path }) {
      // Errors from procedures arrive here already public; this catches the rest (bad JSON, context).
      const safe = publicError(error, path);
      const domain = isHangarError(safe.cause) ? safe.cause.code : undefined;
      return {
        ...shape,
        message: safe.message,
        data: { ...shape.data, domainCode: domain ?? null, stack: undefined },
      };
    },
  });

/**
 * The result of a procedure that ran on another host. It travels up from the routing
 * middleware as the cause of an error, because only a middleware's `next()` makes a result;
 * domainErrors, the first middleware, turns it back into the procedure's result.
 */
class RanElsewhere extends Error {
  constructor(readonly data: unknown) {
    super("the procedure ran on another host");
  }
}

/**
 * Each call gets a request id: its log lines and the events it records carry it. Queries
 * and mutations are timed by procedure for /metrics (a subscription lasts as long as the tab).
 */
const observed = t.middleware(({ ctx, path, type, next }) =>
  withRequestId(randomUUID(), async () => {
    if (type === "subscription") return next();
    const end = ctx.hangar.metrics.timeRequest(path, type);
    const result = await next();
    end(result.ok ? "ok" : "error");
    return result;
  }),
);

/** Every error leaves a procedure through publicError. */
const domainErrors = t.middleware(async ({ path, next }) => {
  const result = await next();
  if (!result.ok) {
    if (result.error.cause instanceof RanElsewhere) return { marker: result.marker, ok: true as const, data: result.error.cause.data };
    throw publicError(result.error, path);
  }
  return result;
});

// 3. Procedures

/** Before any middleware reads the database with it, the raw input must be text it can hold. */
const wellFormedInput = t.middleware(async ({ getRawInput, next }) => {
  const problem = malformedText(await getRawInput());
  if (problem) throw new HangarError("INVALID_INPUT", problem);
  return next();
});

/**
 * A browser attaches the session cookie to requests that other sites make it send, so a
 * mutation carrying no Bearer token (which no other site can make a browser add) must name
 * an allowed Origin, or, when a browser sends no Origin, come with Sec-Fetch-Site: same-origin.
 */
const sameOriginMutations = t.middleware(({ ctx, type, next }) => {
  if (type !== "mutation" || ctx.transport.kind !== "http" || ctx.transport.bearer) return next();
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

/** Live subscriptions one user may hold on this host at once: a tab holds one to three (about 60 KB each). */
export const MAX_SUBSCRIPTIONS_PER_USER = 500;
/** Open subscriptions, by user id. */
const openSubscriptions = new Map<string, number>();

/** `source`, calling `release` once when it ends, however it ends (even if it never started). */
function releasing<T>(source: AsyncIterable<T>, release: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const inner = source[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const step = await inner.next();
            if (step.done) release();
            return step;
          } catch (error) {
            release();
            throw error;
          }
        },
        async return(value?: unknown) {
          release();
          return (await inner.return?.(value)) ?? { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * A subscription outlives the credentials it started with, and only the API WebSocket (ws.ts)
 * reads its caller again and ends it when they go. Over plain HTTP (tRPC's server-sent events)
 * it would stream on after a sign-out, a token's revocation or a demotion, so it is refused there.
 * Each holds memory until it ends: a user's are counted, so a script (or a read-only token)
 * opening thousands on one socket is refused rather than filling the server's memory.
 */
const liveSubscriptions = t.middleware(async ({ ctx, type, next }) => {
  if (type !== "subscription") return next();
  if (ctx.transport.kind === "http" && !ctx.recheck) {
    throw new HangarError("INVALID_INPUT", "Live changes come over the API WebSocket (tRPC's wsLink to ws://HOST/api/trpc-ws), not over HTTP.");
  }
  const user = ctx.principal?.userId;
  if (!user) return next();
  const open = openSubscriptions.get(user) ?? 0;
  if (open >= MAX_SUBSCRIPTIONS_PER_USER) {
    throw new HangarError(
      "RATE_LIMITED",
      `You hold ${MAX_SUBSCRIPTIONS_PER_USER} live subscriptions on this host already (a tab holds a few); end some, or close tabs or connections, first.`,
    );
  }
  openSubscriptions.set(user, open + 1);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const left = (openSubscriptions.get(user) ?? 1) - 1;
    if (left > 0) openSubscriptions.set(user, left);
    else openSubscriptions.delete(user);
  };
  const result = await next().catch((error: unknown) => {
    release();
    throw error;
  });
  if (!result.ok || !isAsyncIterable(result.data)) {
    release();
    return result;
  }
  return { ...result, data: releasing(result.data, release) };
});

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

/** On a long-lived connection, the caller as the database has them now, not as at connect. */
const currentPrincipal = t.middleware(async ({ ctx, next }) => {
  if (!ctx.recheck) return next();
  const principal = await ctx.recheck();
  if (ctx.principal && !principal) {
    throw new HangarError("UNAUTHENTICATED", "Your sign-in has ended (signed out, token revoked or account disabled); sign in again.");
  }
  return next({ ctx: { principal, actor: principal ? actorLabel(principal) : "anonymous" } });
});

const enforcePermission = t.middleware(async ({ ctx, meta, type, getRawInput, next }) => {
  if (!meta) throw new HangarError("FORBIDDEN", "This procedure declares no permission, so nobody may call it.");
  if (meta.permission === "public") return next();
  const principal = ctx.principal;
  if (!principal) {
    // A token was sent and matched none: say so, rather than ask for one.
    if (ctx.transport.kind === "http" && ctx.transport.bearer) {
      throw new HangarError(
        "UNAUTHENTICATED",
        "That API token is not valid: it was revoked, has expired or is mistyped, or its user is disabled. Make a new one on the Tokens page (or ask an admin).",
      );
    }
    throw new HangarError("UNAUTHENTICATED", "Sign in first, or send an API token as Authorization: Bearer <token>.");
  }
  // Every change is a mutation (terminal tickets too), so this holds for the REST routes as well.
  if (principal.readOnly && type === "mutation") {
    throw new HangarError("FORBIDDEN", `Token ${principal.tokenName ?? ""} is read-only: it reads, and changes nothing. Use a token made without "Read only".`);
  }
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
        // Input that is not an id is the procedure's BAD_REQUEST to report, before any query.
        const vmId = id.safeParse(raw?.[meta.vmInput ?? "id"]);
        if (!vmId.success) return true;
        const vm = await ctx.hangar.db.vm.findUnique({ where: { id: vmId.data }, select: { ownerId: true } });
        // A missing VM is the procedure's NOT_FOUND to report.
        return !vm || canControlVm(principal, vm);
      }
    }
  })();
  if (!allowed) throw new HangarError("FORBIDDEN", refusal(meta.permission, principal.role));
  // The events the call records under its actor are its user's (the audit log filters by user).
  return withCaller({ actor: ctx.actor, userId: principal.userId }, () => next({ ctx: { principal } }));
});

/** The input field `field` of raw input, when it is an id. */
function idIn(raw: unknown, field: string): string | undefined {
  const value = id.safeParse(typeof raw === "object" && raw !== null ? Reflect.get(raw, field) : undefined);
  return value.success ? value.data : undefined;
}

/** What placement reads of a create's raw input; input it refuses is the procedure's to report. */
const placementInput = z
  .object({
    hostId: id.optional(),
    memoryMiB: z.number().int().min(1).max(65536),
    imageId: id.optional(),
    network: z.string().optional(),
    bridge: z.string().optional(),
  })
  .transform(({ network, bridge, ...rest }) => ({ ...rest, bridge: network === "bridge" && bridge ? bridge : undefined }));

/** Extra time a forwarded call gets on top of its own timeout (or of two minutes without one). */
const FORWARD_SLACK_MS = 120_000;

/**
 * Runs the procedure on the host it belongs to (meta.runsOn). Here: it goes on. On another
 * live host: forwarded there as a job, whose result or error becomes this call's. On an
 * offline host: refused with HOST_OFFLINE, except reads that answer from the database here.
 * A forwarded call runs where it landed: its sender already routed it.
 */
const onOwningHost = t.middleware(async ({ ctx, meta, path, type, getRawInput, next }) => {
  if (!meta?.runsOn || ctx.transport.kind === "forwarded" || (type !== "query" && type !== "mutation")) return next();
  const { cluster } = ctx.hangar;
  let raw = await getRawInput();
  let location: Location = { kind: "here" };
  if (meta.runsOn === "vm") {
    const vmId = idIn(raw, meta.vmInput ?? "id");
    if (vmId) location = await cluster.locateVm(vmId);
  } else if (meta.runsOn === "pool") {
    const poolId = idIn(raw, meta.poolInput ?? "id");
    if (poolId) location = await cluster.locatePool(poolId);
  } else if (meta.runsOn === "host") {
    const hostId = idIn(raw, "id");
    if (hostId) location = await cluster.locateHost(hostId);
  } else {
    const input = placementInput.safeParse(raw);
    if (input.success) {
      const host = await cluster.place(input.data);
      // The chosen host creates it there without placing it again.
      if (!host.here && typeof raw === "object" && raw !== null) raw = { ...raw, hostId: host.id };
      location = host.here ? { kind: "here" } : { kind: "remote", host };
    }
  }
  if (location.kind === "here") return next();
  if (location.kind === "offline") {
    if (meta.whenOffline === "answer-here") return next();
    throw new HangarError(
      "HOST_OFFLINE",
      meta.runsOn === "host" ? cluster.hostOfflineSentence(location) : cluster.offlineSentence(location, meta.runsOn === "pool" ? "That pool" : "That VM"),
    );
  }
  const timeoutSec = typeof raw === "object" && raw !== null ? Reflect.get(raw, "timeoutSec") : undefined;
  const budgetMs = (typeof timeoutSec === "number" ? timeoutSec : (meta.forwardBudgetSec ?? 120)) * 1000 + FORWARD_SLACK_MS;
  let data: unknown;
  try {
    data = await cluster.forward(location.host, encodeCall({ path, type, input: raw, principal: ctx.principal, actor: ctx.actor }), budgetMs);
  } catch (error) {
    // The host went offline with the call in hand: a read that answers here while it is offline does so now.
    if (meta.whenOffline === "answer-here" && isHangarError(error) && error.code === "HOST_OFFLINE") return next();
    if (!(error instanceof ForwardedFailure)) throw error;
    // The owning host's error, as it gave it: the same codes and sentence.
    if (error.domainCode) throw new HangarError(error.domainCode, error.message);
    const same = new TRPCError({ code: error.code, message: error.message });
    published.add(same);
    throw same;
  }
  throw new RanElsewhere(data);
});

/** Records in the audit log a change the caller made (as its actor, for its user). */
export function auditChange(ctx: Context, change: { action: string; message: string; target: string }) {
  return ctx.hangar.recorder.record({ stream: "audit", actor: ctx.actor, ok: true, userId: ctx.principal?.userId, ...change });
}

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
/** Every procedure starts here and sets `.meta({ permission })`. */
export const procedure = t.procedure
  .use(observed)
  .use(domainErrors)
  .use(wellFormedInput)
  .use(liveSubscriptions)
  .use(currentPrincipal)
  .use(sameOriginMutations)
  .use(enforcePermission)
  .use(onOwningHost);
