/**
 * What a forwarded call and its outcome look like in a job: the procedure's path, its raw
 * input and its result as superjson text (Dates and BigInts survive), who asked, and a
 * failure as its codes and sentence, so the caller raises the same error the owning host did.
 * Both are read back with zod: job rows are JSON from the database.
 */
import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";
import superjson from "superjson";
import { z } from "zod";
import { ROLES, type Principal } from "../auth/permissions.ts";
import { isErrorCode } from "../errors.ts";

const principal = z.object({
  userId: z.string(),
  email: z.string(),
  role: z.enum(ROLES),
  via: z.enum(["session", "token"]),
  tokenName: z.string().optional(),
  sessionId: z.string().optional(),
  readOnly: z.boolean().optional(),
});

export const forwardedCall = z.object({
  /** "vm.start": a procedure of the app router. */
  path: z.string().regex(/^[a-z]+\.[A-Za-z]+$/),
  type: z.enum(["query", "mutation"]),
  /** The raw input, superjson text. */
  input: z.string(),
  principal: principal.nullable(),
  actor: z.string(),
});
export type ForwardedCall = z.infer<typeof forwardedCall>;

function isTrpcCode(code: string): code is TRPC_ERROR_CODE_KEY {
  return Object.hasOwn(TRPC_ERROR_CODES_BY_KEY, code);
}

export const callOutcome = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), data: z.string() }),
  z.object({
    ok: z.literal(false),
    code: z
      .string()
      .refine(isTrpcCode)
      .transform((code) => (isTrpcCode(code) ? code : "INTERNAL_SERVER_ERROR")),
    domainCode: z
      .string()
      .nullable()
      .transform((code) => (code !== null && isErrorCode(code) ? code : null)),
    message: z.string(),
  }),
]);
export type CallOutcome = z.input<typeof callOutcome>;

export function encodeCall(call: { path: string; type: "query" | "mutation"; input: unknown; principal: Principal | null; actor: string }): ForwardedCall {
  return { ...call, input: superjson.stringify(call.input) };
}

export function decodeInput(call: ForwardedCall): unknown {
  return superjson.parse<unknown>(call.input);
}

export function success(data: unknown): CallOutcome {
  return { ok: true, data: superjson.stringify(data) };
}

export function decodeData(text: string): unknown {
  return superjson.parse<unknown>(text);
}
