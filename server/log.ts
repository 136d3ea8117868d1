/**
 * The server's own log: JSON lines on stdout (pino), one object per line with `time`,
 * `level`, `msg` and, inside an API call, `reqId`: the id the call's events carry too
 * (Event.requestId), so a log line and the events it caused can be found together.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { pino } from "pino";

interface RequestScope {
  requestId: string;
  caller?: Caller;
}

/** Who made an API call, once it is known: the actor its events are written as, and their user. */
export interface Caller {
  actor: string;
  userId: string | null;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` as part of request `requestId`: logs and recorded events inside it carry the id. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return scope.run({ requestId }, fn);
}

/** The id of the API call this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.requestId;
}

/** Runs `fn` as the part of the current API call made for `caller` (after its permission check). */
export function withCaller<T>(caller: Caller, fn: () => T): T {
  const current = scope.getStore();
  return current ? scope.run({ ...current, caller }, fn) : fn();
}

/** Who made the API call this code runs for, if any. */
export function currentCaller(): Caller | undefined {
  return scope.getStore()?.caller;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** main.ts sets HANGAR_LOG_LEVEL; the tests' setup (server/testing/quiet-log.ts) silences it. */
export const logger = pino({
  level: "info",
  base: { pid: process.pid },
  mixin() {
    const requestId = currentRequestId();
    return requestId ? { reqId: requestId } : {};
  },
});
