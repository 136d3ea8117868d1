/**
 * The owning host's side of a forwarded call: the job's procedure runs here through the app
 * router, as the caller (its principal and actor) and with the same middleware (input checks,
 * permission), and its result or error goes back as the job's outcome. Only the routing
 * middleware is skipped: the sender already routed the call to this host.
 */
import { TRPCError } from "@trpc/server";
import { createCaller } from "../api/root.ts";
import { errorDetail, isHangarError, namingHost } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { decodeInput, forwardedCall, success, type CallOutcome } from "./calls.ts";

/** The procedure at `path` ("vm.start") of a caller, or undefined. */
function procedureAt(caller: unknown, path: string): ((input: unknown) => Promise<unknown>) | undefined {
  let node: unknown = caller;
  for (const key of path.split(".")) {
    if ((typeof node !== "object" && typeof node !== "function") || node === null) return undefined;
    node = Reflect.get(node, key);
  }
  if (typeof node !== "function") return undefined;
  const procedure = node;
  return async (input) => {
    const result: unknown = await Reflect.apply(procedure, undefined, [input]);
    return result;
  };
}

export async function runForwardedCall(hangar: Hangar, data: unknown, log: (message: string) => void = () => undefined): Promise<CallOutcome> {
  const call = forwardedCall.safeParse(data);
  if (!call.success)
    return { ok: false, code: "BAD_REQUEST", domainCode: null, message: "The forwarded call was not readable; the hosts may run different Hangar versions." };
  const { path, principal, actor } = call.data;
  const caller = createCaller({ hangar, transport: { kind: "forwarded" }, principal, actor });
  const procedure = procedureAt(caller, path);
  if (!procedure)
    return {
      ok: false,
      code: "NOT_FOUND",
      domainCode: null,
      message: `Host ${hangar.hosts.name} has no procedure ${path}; the hosts may run different Hangar versions.`,
    };
  try {
    return success(await procedure(decodeInput(call.data)));
  } catch (error) {
    // Errors leave procedures already public (api/trpc.ts): codes as they are, and the sentence.
    if (error instanceof TRPCError) {
      return {
        ok: false,
        code: error.code,
        domainCode: isHangarError(error.cause) ? error.cause.code : null,
        message: namingHost(error.message, hangar.hosts.name),
      };
    }
    log(`forwarded ${path} failed: ${errorDetail(error)}`);
    return { ok: false, code: "INTERNAL_SERVER_ERROR", domainCode: null, message: "internal error on the VM's host; its log has the details" };
  }
}
