/** The hosts of this Hangar: the machines VMs run on (one on SQLite). */
import type { Hosts } from "../hosts.ts";
import { hostListOutput } from "./outputs.ts";
import { procedure, restRoutes, router } from "./trpc.ts";

const rest = restRoutes("host");

type HostRow = Awaited<ReturnType<Hosts["list"]>>[number];

/**
 * A host as the caller may see it. Where hosts call each other (their internal addresses)
 * and their machines' boot ids are the admins': others get what placement and the
 * dashboard need, as image paths are kept from them.
 */
export function hostView(host: HostRow, isAdmin: boolean) {
  return { ...host, apiAddress: isAdmin ? host.apiAddress : null, bootId: isAdmin ? host.bootId : null };
}

export const hostRouter = router({
  list: procedure
    .meta({ permission: "read", openapi: rest("GET", "/hosts", "Every host: online or not, and what its VMs take of it") })
    .output(hostListOutput)
    .query(async ({ ctx }) => {
      const isAdmin = ctx.principal?.role === "admin";
      return (await ctx.hangar.hosts.list()).map((host) => hostView(host, isAdmin));
    }),
});
