import { z } from "zod";
import { STAGING_STATES } from "../pool/pool.ts";
import { id, vmName } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

const size = z.number().int("size must be a whole number.").min(0, "size must be 0 or more.").max(32, "A pool holds at most 32 VMs.");

export const poolRouter = router({
  list: procedure.meta({ permission: "read" }).query(({ ctx }) => ctx.hangar.pools.listPools()),
  create: procedure
    .meta({ permission: "pool.manage" })
    .input(
      z.object({
        name: vmName,
        imageId: id,
        cpus: z.number().int().min(1, "A VM needs at least 1 CPU.").max(16, "At most 16 CPUs per VM."),
        memoryMiB: z.number().int().min(64, "A VM needs at least 64 MiB of memory.").max(65536, "At most 65536 MiB of memory per VM."),
        userData: z.string().max(64 * 1024, "user-data is limited to 64 KiB.").optional(),
        size,
        staging: z.enum(STAGING_STATES, "staging must be Running, Paused, Suspended or Stopped."),
      }),
    )
    .mutation(({ ctx, input }) => ctx.hangar.pools.createPool(input, ctx.actor)),
  resize: procedure.meta({ permission: "pool.manage" }).input(z.object({ id, size })).mutation(({ ctx, input }) => ctx.hangar.pools.resizePool(input.id, input.size)),
  delete: procedure.meta({ permission: "pool.manage" }).input(z.object({ id })).mutation(async ({ ctx, input }) => {
    await ctx.hangar.pools.deletePool(input.id, ctx.actor);
    return { id: input.id };
  }),
  /** A ready VM: its id, where to SSH and the key (or yours, installed for root). */
  acquire: procedure
    .meta({ permission: "pool.use" })
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
    .mutation(({ ctx, input }) => ctx.hangar.pools.acquire(input.poolId, { actor: ctx.actor, ownerId: ctx.principal?.userId, timeoutMs: input.timeoutSec * 1000, publicKey: input.publicKey })),
  release: procedure.meta({ permission: "vm.control", vmInput: "vmId" }).input(z.object({ vmId: id })).mutation(async ({ ctx, input }) => {
    await ctx.hangar.pools.release(input.vmId, ctx.actor);
    return { vmId: input.vmId };
  }),
});
