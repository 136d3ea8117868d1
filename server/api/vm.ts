import { tracked } from "@trpc/server";
import { z } from "zod";
import { cloneExistingVm, createVm, execInVm, getVm, listEvents, listVms, syncToVm, waitForVm } from "../vms/inventory.ts";
import { createVmInput, execInput, id, syncInput, vmName, waitInput } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

export const vmRouter = router({
  list: procedure.meta({ permission: "read" }).query(({ ctx }) => listVms(ctx.hangar)),
  get: procedure.meta({ permission: "read" }).input(z.object({ id })).query(({ ctx, input }) => getVm(ctx.hangar, input.id)),
  create: procedure
    .meta({ permission: "vm.create" })
    .input(createVmInput)
    .mutation(({ ctx, input }) => createVm(ctx.hangar, input, ctx.actor, ctx.principal?.userId)),
  start: procedure.meta({ permission: "vm.control" }).input(z.object({ id })).mutation(async ({ ctx, input }) => {
    await ctx.hangar.lifecycle.startVm(input.id, ctx.actor);
    return getVm(ctx.hangar, input.id);
  }),
  stop: procedure
    .meta({ permission: "vm.control" })
    .input(z.object({ id, timeoutSec: z.number().int().min(0, "timeoutSec must be 0 or more.").max(600, "timeoutSec is at most 600.").default(30) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.stopVm(input.id, input.timeoutSec * 1000, ctx.actor);
      return getVm(ctx.hangar, input.id);
    }),
  /** Saves the VM's whole state to its disk and ends qemu; vm.start resumes it. */
  suspend: procedure.meta({ permission: "vm.control" }).input(z.object({ id })).mutation(async ({ ctx, input }) => {
    await ctx.hangar.lifecycle.suspendVm(input.id, ctx.actor);
    return getVm(ctx.hangar, input.id);
  }),
  /** A new VM from a Stopped one: a copy of its disk, its own key and instance-id. */
  clone: procedure
    .meta({ permission: "vm.control" })
    .input(z.object({ id, name: vmName }))
    .mutation(({ ctx, input }) => cloneExistingVm(ctx.hangar, input, ctx.actor, ctx.principal?.userId)),
  delete: procedure.meta({ permission: "vm.control" }).input(z.object({ id })).mutation(async ({ ctx, input }) => {
    await ctx.hangar.lifecycle.deleteVm(input.id, ctx.actor);
    return { id: input.id };
  }),
  /**
   * Waits until the VM is ready (cloud-init finished: readyState "ready", or "error" with
   * the failed module in readyDetail) or in a state; returns the VM. TIMEOUT when it does not
   * happen in timeoutSec; PRECONDITION_FAILED when the VM stops while waiting for ready.
   */
  wait: procedure.meta({ permission: "read" }).input(waitInput).query(({ ctx, input, signal }) => waitForVm(ctx.hangar, input, ctx.actor, signal)),
  /** Runs a command (argv, no shell unless you ask for one) and returns its output. */
  exec: procedure.meta({ permission: "vm.control" }).input(execInput).mutation(({ ctx, input }) => execInVm(ctx.hangar, input)),
  /** rsync from the host's sync root into the VM. */
  sync: procedure.meta({ permission: "vm.control" }).input(syncInput).mutation(({ ctx, input }) => syncToVm(ctx.hangar, input)),
  events: procedure
    .meta({ permission: "read" })
    .input(z.object({ vmId: id.optional(), limit: z.number().int().min(1).max(200).default(50), cursor: z.string().optional() }))
    .query(({ ctx, input }) => listEvents(ctx.hangar, input)),
  /** Live state changes (SSE). Each message carries the event id, so a reconnect resumes. */
  onChange: procedure.meta({ permission: "read" }).subscription(async function* ({ ctx, signal }) {
    for await (const change of ctx.hangar.bus.changes(signal)) {
      yield tracked(change.eventId || `${change.vmId}:${change.state}:${Date.now()}`, change);
    }
  }),
});
