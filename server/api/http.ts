/** The tRPC API as a Node request handler: context from the session cookie or bearer token. */
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { actorLabel } from "../auth/permissions.ts";
import { authenticate } from "../auth/principal.ts";
import type { Hangar } from "../hangar.ts";
import { appRouter } from "./root.ts";

export const TRPC_BASE_PATH = "/api/trpc/";

export function createTrpcHandler(hangar: Hangar) {
  return createHTTPHandler({
    router: appRouter,
    basePath: TRPC_BASE_PATH,
    createContext: async ({ req }) => {
      const principal = await authenticate(hangar.db, hangar.auth, req.headers);
      return { hangar, principal, actor: principal ? actorLabel(principal) : "anonymous" };
    },
  });
}
