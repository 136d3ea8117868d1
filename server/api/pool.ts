import { z } from "zod";
import { STAGING_STATES } from "../../lib/vocabulary.ts";
import { acquiredOutput, poolDeletedOutput, poolListOutput, poolOutput, releasedOutput } from "./outputs.ts";
import { cpus, id, memoryMiB, userData, vmName } from "./schemas.ts";
import { procedure, router, restRoutes } from "./trpc.ts";

const size = z.number().int("size must be a whole number.").min(0, "size must be 0 or more.").max(32, "A pool holds at most 32 VMs.");

const rest = restRoutes("pool");

export const poolRouter = router({
  list: procedure
    .meta({ permission: "read", openapi: rest("GET", "/pools", "Every pool, with its members") })
    .output(poolListOutput)
    .query(async ({ ctx }) => {
      const pools = await ctx.hangar.pools.listPools();
      // A pool's user-data is its admin's (it may carry secrets its members get): others get null.
      return ctx.principal?.role === "admin" ? pools : pools.map((pool) => ({ ...pool, userData: null }));
    }),
  /** A pool on `hostId`, or on the host placement picks; its members live there. */
  create: procedure
    .meta({ permission: "pool.manage", runsOn: "placement", openapi: rest("POST", "/pools", "Create a pool of ready VMs") })
    .input(
      z.object({
        name: vmName,
        imageId: id,
        cpus,
        memoryMiB,
        userData: userData.optional(),
        size,
        staging: z.enum(STAGING_STATES, "staging must be Running, Paused, Suspended or Stopped."),
        hostId: id.optional(),
      }),
    )
    .output(poolOutput)
    .mutation(({ ctx, input }) => ctx.hangar.pools.createPool(input, ctx.actor)),
  resize: procedure
    .meta({ permission: "pool.manage", runsOn: "pool", openapi: rest("POST", "/pools/{id}/resize", "Change how many VMs a pool keeps waiting") })
    .input(z.object({ id, size }))
    .output(poolOutput)
    .mutation(({ ctx, input }) => ctx.hangar.pools.resizePool(input.id, input.size)),
  delete: procedure
    .meta({ permission: "pool.manage", runsOn: "pool", openapi: rest("POST", "/pools/{id}/delete", "Delete a pool (VMs handed out stay their holders')") })
    .input(z.object({ id }))
    .output(poolDeletedOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.pools.deletePool(input.id, ctx.actor);
      return { id: input.id };
    }),
  /**
   * A ready VM: its id, where to SSH and the VM's key (none when you give publicKey). Your
   * publicKey and your own keys (account.addSshKey) are added for the login user.
   */
  acquire: procedure
    .meta({
      permission: "pool.use",
      runsOn: "pool",
      poolInput: "poolId",
      openapi: rest("POST", "/pools/{poolId}/acquire", "Take a ready VM from a pool: where to SSH, and its key unless publicKey is given"),
    })
    .input(
      z.object({
        poolId: id,
        timeoutSec: z.number().int().min(1, "timeoutSec must be at least 1.").max(600, "timeoutSec is at most 600.").default(60),
        publicKey: z
          .string()
          .max(8192)
          .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( [^\n]*)?$/, "publicKey must be one OpenSSH public key line.")
          .optional(),
      }),
    )
    .output(acquiredOutput)
    .mutation(({ ctx, input }) =>
      ctx.hangar.pools.acquire(input.poolId, {
        actor: ctx.actor,
        ownerId: ctx.principal?.userId,
        timeoutMs: input.timeoutSec * 1000,
        publicKey: input.publicKey,
      }),
    ),
  release: procedure
    .meta({
      permission: "vm.control",
      vmInput: "vmId",
      runsOn: "vm",
      openapi: rest("POST", "/vms/{vmId}/release", "Give a VM acquired from a pool back: it is stopped and deleted"),
    })
    .input(z.object({ vmId: id }))
    .output(releasedOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.pools.release(input.vmId, ctx.actor);
      return { vmId: input.vmId };
    }),
});
