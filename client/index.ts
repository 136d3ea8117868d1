/**
 * The typed client, `import { createHangarClient } from "hangar/client"`: the API the
 * dashboard calls, from another TypeScript project, with an API token.
 *
 * Its declared type names @trpc/server's types only, not @trpc/client's: the latter's
 * declarations import its WebSocket link's, which do not type-check against @types/ws's ESM
 * declarations, so a project with @types/ws installed would need skipLibCheck.
 */
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type {
  AnyProcedure,
  RouterRecord,
  inferClientTypes,
  inferProcedureInput,
  inferTransformedProcedureOutput,
} from "@trpc/server/unstable-core-do-not-import";
import superjson from "superjson";
import { MAX_BATCH_CALLS } from "../lib/vocabulary.ts";
import type { AppRouter } from "../server/api/root.ts";

export type { AppRouter };

export interface HangarClientOptions {
  /** Hangar's address, e.g. "https://hangar.example" (one of its HANGAR_PUBLIC_ORIGIN). */
  url: string;
  /** An API token (the Tokens page shows it once); calls act with its owner's role. */
  token: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

type Types = inferClientTypes<AppRouter>;
/** Input is optional where the procedure takes none (or only optional fields). */
type Args<P extends AnyProcedure> =
  undefined extends inferProcedureInput<P> ? [input?: inferProcedureInput<P>, options?: CallOptions] : [input: inferProcedureInput<P>, options?: CallOptions];
type Output<P extends AnyProcedure> = Promise<inferTransformedProcedureOutput<Types, P>>;

/** Queries and mutations; subscriptions (vm.onChange) need tRPC's WebSocket link and are left out. */
type Procedures<R extends RouterRecord> = {
  [K in keyof R as R[K] extends AnyProcedure ? (R[K]["_def"]["type"] extends "subscription" ? never : K) : K]: R[K] extends AnyProcedure
    ? R[K]["_def"]["type"] extends "query"
      ? { query(...args: Args<R[K]>): Output<R[K]> }
      : { mutate(...args: Args<R[K]>): Output<R[K]> }
    : R[K] extends RouterRecord
      ? Procedures<R[K]>
      : never;
};

export type HangarClient = Procedures<AppRouter["_def"]["record"]>;

/** Calls made in the same tick go out as one HTTP request (tRPC's batch link), up to the server's batch limit each. */
export function createHangarClient({ url, token }: HangarClientOptions): HangarClient {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: new URL("/api/trpc", url).toString(),
        transformer: superjson,
        maxItems: MAX_BATCH_CALLS,
        headers: { authorization: `Bearer ${token}` },
      }),
    ],
  });
}
