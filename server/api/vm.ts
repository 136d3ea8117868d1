import { tracked } from "@trpc/server";
import { z } from "zod";
import {
  addKeysToVm,
  cloneExistingVm,
  createVm,
  describeVm,
  execInVm,
  getVm,
  renameVm,
  setOwner,
  setProtection,
  setTags,
  syncToVm,
  vmSerialTail,
  waitForVm,
} from "../vms/inventory.ts";
import { listEvents } from "../audit/recorder.ts";
import { canControlVm } from "../auth/permissions.ts";
import { liveChanges, timeMark } from "../vms/changes.ts";
import { listVmPage, tagsInUse } from "../vms/list.ts";
import { addForward, removeForward } from "../vms/forwards.ts";
import { publishDisk, resizeDisk } from "../vms/disks.ts";
import { resizeVm } from "../vms/resources.ts";
import { setAutostart } from "../vms/autostart.ts";
import { vmAddresses } from "../vms/addresses.ts";
import {
  addressesOutput,
  deletedOutput,
  diskOutput,
  eventPageOutput,
  execOutput,
  forwardOutput,
  forwardRemovedOutput,
  importedImageOutput,
  serialTailOutput,
  syncOutput,
  vmListOutput,
  vmOutput,
} from "./outputs.ts";
import {
  cpus,
  createVmInput,
  description,
  diskGiB,
  execInput,
  id,
  memoryMiB,
  portForward,
  syncInput,
  tags,
  userId,
  vmListInput,
  vmName,
  waitInput,
} from "./schemas.ts";
import { procedure, router, restRoutes, type Context } from "./trpc.ts";

/**
 * A VM as the caller may see it. Host paths (the VM's key file) are for admins; its user-data,
 * which often carries passwords and keys, for those who may control it. Others get null.
 */
function forCaller<T extends { sshKeyPath: string | null; ownerId: string | null; userData?: string | null }>(ctx: Pick<Context, "principal">, vm: T): T {
  const { principal } = ctx;
  const paths = principal?.role === "admin" ? vm : { ...vm, sshKeyPath: null };
  return principal && canControlVm(principal, vm) ? paths : { ...paths, ...(vm.userData === undefined ? {} : { userData: null }) };
}

/** How long a stop waits for the guest to power off before forcing it. */
const stopTimeout = z.number().int().min(0, "timeoutSec must be 0 or more.").max(600, "timeoutSec is at most 600.").default(30);

const rest = restRoutes("vm");

export const vmRouter = router({
  /**
   * A page of the inventory: filters (search, state, owner "mine" or a user, host, image,
   * pool), a sort and keyset paging; `{ items, nextCursor, total }`, rows without userData.
   * Without input: every VM in one page. Over HTTP, GETs share one serialized snapshot per
   * change and answer If-None-Match with 304 (api/http.ts).
   */
  list: procedure
    .meta({ permission: "read", openapi: rest("GET", "/vms", "A page of the inventory") })
    .input(vmListInput)
    .output(vmListOutput)
    .query(({ ctx, input }) => listVmPage(ctx.hangar, input, ctx.principal?.userId)),
  /** The VM with its serial tail and disk, read on its host (from the database alone while that host is offline). */
  get: procedure
    .meta({ permission: "read", runsOn: "vm", whenOffline: "answer-here", openapi: rest("GET", "/vms/{id}", "One VM") })
    .input(z.object({ id }))
    .output(vmOutput)
    .query(async ({ ctx, input }) => forCaller(ctx, await getVm(ctx.hangar, input.id))),
  /** The end of the VM's serial console output, read on its host ("" while that host is offline); the VM page rereads it while the VM runs. */
  serialTail: procedure
    .meta({ permission: "read", runsOn: "vm", whenOffline: "answer-here", openapi: rest("GET", "/vms/{id}/serial", "The end of a VM's serial console output") })
    .input(z.object({ id }))
    .output(serialTailOutput)
    .query(async ({ ctx, input }) => ({ text: await vmSerialTail(ctx.hangar, input.id) })),
  create: procedure
    .meta({ permission: "vm.create", runsOn: "placement", openapi: rest("POST", "/vms", "Create a VM (Stopped, with its disk made)") })
    .input(createVmInput)
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => forCaller(ctx, await createVm(ctx.hangar, input, ctx.actor, ctx.principal?.userId))),
  start: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/start", "Start or resume a VM") })
    .input(z.object({ id }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.startVm(input.id, ctx.actor);
      return forCaller(ctx, await getVm(ctx.hangar, input.id));
    }),
  stop: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/stop", "Stop a VM (power button, then force after timeoutSec)") })
    .input(z.object({ id, timeoutSec: stopTimeout }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.stopVm(input.id, input.timeoutSec * 1000, ctx.actor);
      return forCaller(ctx, await getVm(ctx.hangar, input.id));
    }),
  /** Stops a Running VM (power button, then force after timeoutSec) and starts it again: a fresh boot. */
  restart: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/restart", "Restart a running VM (stop, then start)") })
    .input(z.object({ id, timeoutSec: stopTimeout }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.restartVm(input.id, input.timeoutSec * 1000, ctx.actor);
      return forCaller(ctx, await getVm(ctx.hangar, input.id));
    }),
  /** Saves the VM's whole state to its disk and ends qemu; vm.start resumes it. */
  suspend: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/suspend", "Suspend a VM to its disk") })
    .input(z.object({ id }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.suspendVm(input.id, ctx.actor);
      return forCaller(ctx, await getVm(ctx.hangar, input.id));
    }),
  /** A new VM from a Stopped one: a copy of its disk, its own key and instance-id. */
  clone: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/clone", "A new VM from a Stopped one") })
    .input(z.object({ id, name: vmName }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => forCaller(ctx, await cloneExistingVm(ctx.hangar, input, ctx.actor, ctx.principal?.userId))),
  /**
   * Moves a Stopped or Suspended VM to another host (several hosts on PostgreSQL; a Suspended
   * one to a host of the same qemu and accelerator): its disk with its snapshots, UEFI
   * variables, SSH key and saved state go along; it starts (or resumes) there next time.
   */
  move: procedure
    .meta({
      permission: "vm.control",
      runsOn: "vm",
      // A disk of many GiB takes minutes to copy.
      forwardBudgetSec: 3600,
      openapi: rest("POST", "/vms/{id}/move", "Move a Stopped or Suspended VM to another host"),
    })
    .input(z.object({ id, hostId: id }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.moves.moveVm(input.id, input.hostId, ctx.actor);
      return forCaller(ctx, await getVm(ctx.hangar, input.id));
    }),
  delete: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/delete", "Delete a VM and its disk") })
    .input(z.object({ id }))
    .output(deletedOutput)
    .mutation(async ({ ctx, input }) => {
      await ctx.hangar.lifecycle.deleteVm(input.id, ctx.actor);
      return { id: input.id };
    }),
  /**
   * Waits until the VM is ready (cloud-init finished: readyState "ready", or "error" with
   * the failed module in readyDetail) or in a state; returns the VM. TIMEOUT when it does not
   * happen in timeoutSec; PRECONDITION_FAILED when the VM stops while waiting for ready.
   */
  wait: procedure
    .meta({ permission: "read", runsOn: "vm", openapi: rest("GET", "/vms/{id}/wait", "Wait until a VM is ready or in a state (null once Deleted)") })
    .input(waitInput)
    .output(vmOutput.nullable())
    .query(async ({ ctx, input, signal }) => {
      const vm = await waitForVm(ctx.hangar, input, ctx.actor, signal);
      return vm && forCaller(ctx, vm);
    }),
  /** Runs a command (argv, no shell unless you ask for one) and returns its output. */
  exec: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/exec", "Run a command in a running VM") })
    .input(execInput)
    .output(execOutput)
    .mutation(({ ctx, input }) => execInVm(ctx.hangar, input, ctx.actor)),
  /** Adds the caller's own SSH keys (Account page) to a running VM's login user; ones it has already are not added again. */
  addMyKeys: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/ssh-keys", "Add your own SSH keys to a running VM") })
    .input(z.object({ id }))
    .output(z.object({ added: z.number().int(), keys: z.number().int(), user: z.string() }))
    .mutation(({ ctx, input }) => addKeysToVm(ctx.hangar, input, ctx.principal?.userId ?? "", ctx.actor)),
  /** rsync from the sync root of the VM's host into the VM. */
  sync: procedure
    .meta({
      permission: "vm.control",
      runsOn: "vm",
      openapi: rest("POST", "/vms/{id}/sync", "Copy a file or directory from the sync root of the VM's host into a running VM"),
    })
    .input(syncInput)
    .output(syncOutput)
    .mutation(({ ctx, input }) => syncToVm(ctx.hangar, input, ctx.actor)),
  /** Grows a Stopped or Running VM's disk (never shrinks it); the guest grows its root partition at the next boot. */
  resizeDisk: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/disk/resize", "Grow a Stopped or Running VM's disk") })
    .input(z.object({ id, diskGiB }))
    .output(diskOutput)
    .mutation(({ ctx, input }) => resizeDisk(ctx.hangar, input, ctx.actor)),
  /** A new name, in any state; the guest's hostname follows at its next boot. */
  rename: procedure
    .meta({ permission: "vm.control", openapi: rest("POST", "/vms/{id}/rename", "Rename a VM") })
    .input(z.object({ id, name: vmName }))
    .output(vmOutput)
    .mutation(async ({ ctx, input }) => forCaller(ctx, await renameVm(ctx.hangar, input, ctx.actor))),
  /** What the VM is for, in people's words (shown on its page; not in list rows). */
  describe: procedure
    .meta({ permission: "vm.control", openapi: rest("POST", "/vms/{id}/description", "Set what a VM is for") })
    .input(z.object({ id, description }))
    .output(z.object({ description: z.string() }))
    .mutation(({ ctx, input }) => describeVm(ctx.hangar, input, ctx.actor)),
  /** Protection on or off: while on, the VM cannot be deleted (Proxmox's Protection). */
  setProtection: procedure
    .meta({ permission: "vm.control", openapi: rest("POST", "/vms/{id}/protection", "Turn a VM's protection from deletion on or off") })
    .input(z.object({ id, protection: z.boolean() }))
    .output(z.object({ protection: z.boolean() }))
    .mutation(({ ctx, input }) => setProtection(ctx.hangar, input, ctx.actor)),
  /** Gives the VM to another user (null: to nobody; only admins control it then), in any state (admins). */
  setOwner: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/vms/{id}/owner", "Give a VM to another user, or to nobody (admins)") })
    .input(z.object({ id, ownerId: userId.nullable() }))
    .output(z.object({ ownerId: z.string().nullable() }))
    .mutation(({ ctx, input }) => setOwner(ctx.hangar, input, ctx.actor)),
  /** The running VM's interfaces and addresses as its guest agent reports them (a bridged VM's LAN address). */
  addresses: procedure
    .meta({ permission: "read", runsOn: "vm", openapi: rest("GET", "/vms/{id}/addresses", "A running VM's addresses, from its guest agent") })
    .input(z.object({ id }))
    .output(addressesOutput)
    .query(({ ctx, input }) => vmAddresses(ctx.hangar, input.id)),
  /** Every tag some VM has, by tag, with how many VMs have it. */
  listTags: procedure
    .meta({ permission: "read" })
    .output(z.array(z.object({ tag: z.string(), vms: z.number().int() })))
    .query(({ ctx }) => tagsInUse(ctx.hangar)),
  /** Replaces the VM's tags (lowercased, sorted, each once; `[]` removes them), in any state; vm.list filters by `tag`. */
  setTags: procedure
    .meta({ permission: "vm.control", openapi: rest("POST", "/vms/{id}/tags", "Set a VM's tags") })
    .input(z.object({ id, tags }))
    .output(z.object({ tags: z.array(z.string()) }))
    .mutation(({ ctx, input }) => setTags(ctx.hangar, input, ctx.actor)),
  /** Changes a Stopped VM's CPUs, memory or both; qemu gets them at the next start. */
  resize: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/resize", "Change a Stopped VM's CPUs and memory") })
    .input(z.object({ id, cpus: cpus.optional(), memoryMiB: memoryMiB.optional() }))
    .output(z.object({ cpus: z.number().int(), memoryMiB: z.number().int() }))
    .mutation(({ ctx, input }) => resizeVm(ctx.hangar, input, ctx.actor, ctx.principal?.userId)),
  /** Whether the VM starts when its host boots (the first Hangar start on a new boot of the machine). */
  setAutostart: procedure
    .meta({ permission: "vm.control", openapi: rest("POST", "/vms/{id}/autostart", "Whether a VM starts when its host boots, and in what order") })
    .input(
      z.object({
        id,
        autostart: z.boolean(),
        /** Its place in the start order, lower first (null: none, after those with one). */
        order: z.number().int("order must be a whole number.").min(0, "order must be 0 or more.").max(9999, "order is at most 9999.").nullable().optional(),
        /** Seconds to wait after it starts before the next autostart VM. */
        delaySec: z.number().int("delaySec must be a whole number.").min(0, "delaySec must be 0 or more.").max(3600, "delaySec is at most 3600.").optional(),
      }),
    )
    .output(z.object({ autostart: z.boolean(), order: z.number().int().nullable(), delaySec: z.number().int() }))
    .mutation(({ ctx, input }) => setAutostart(ctx.hangar, input, ctx.actor)),
  /** A new image from a Stopped VM's disk (admins: images are everyone's). */
  publish: procedure
    .meta({ permission: "admin", runsOn: "vm", openapi: rest("POST", "/vms/{id}/publish", "A new image from a Stopped VM's disk (admins)") })
    .input(z.object({ id, name: vmName }))
    .output(importedImageOutput)
    .mutation(({ ctx, input }) => publishDisk(ctx.hangar, input, ctx.actor)),
  /** Forwards a host port (0 for a free one) to a guest port, at once if the VM runs and at every start. */
  addForward: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/forwards", "Forward a host port (0 picks a free one) to a guest port") })
    .input(portForward.extend({ id }))
    .output(forwardOutput)
    .mutation(({ ctx, input }) => addForward(ctx.hangar, input, ctx.actor)),
  removeForward: procedure
    .meta({ permission: "vm.control", runsOn: "vm", openapi: rest("POST", "/vms/{id}/forwards/delete", "Remove the forward of a guest port") })
    .input(z.object({ id, guestPort: portForward.shape.guestPort }))
    .output(forwardRemovedOutput)
    .mutation(({ ctx, input }) => removeForward(ctx.hangar, input, ctx.actor)),
  /** VM events (lifecycle, snapshots, pools), of one VM (vmId) or all, newest first, in pages. */
  events: procedure
    .meta({
      permission: "read",
      openapi: rest("GET", "/events", "VM events, of one VM (vmId), of the VMs once named vmName (a deleted one's too), or all; newest first, in pages"),
    })
    .input(
      z.object({
        vmId: id.optional(),
        vmName: vmName.optional(),
        limit: z.number().int().min(1).max(200).default(50),
        cursor: id.optional(),
      }),
    )
    .output(eventPageOutput)
    // VM events only: sign-ins and account, user and token changes are the audit log's.
    .query(({ ctx, input }) => listEvents(ctx.hangar.db, { stream: "vm", vmId: input.vmId, vmName: input.vmName }, input)),
  /**
   * Live changes, each with the VM's list row (null once gone), its row before the change
   * when known, and the event recorded for it as vm.events lists it (null for a state in
   * progress and for "Gone"). The dashboard takes them over its one WebSocket, `hangar events
   * --follow` too; a reconnect passes the last event id and first gets what it missed. After
   * that replay comes `{ caughtUp }`: false when the caller must read its lists again.
   */
  onChange: procedure
    .meta({ permission: "read" })
    .input(z.object({ lastEventId: id.nullish() }).optional())
    .subscription(async function* ({ ctx, input, signal }) {
      // Every message carries a resume point, the start's too: a tab that saw no event yet
      // resumes from the time it subscribed. A change to a state in progress is no recorded
      // event: it carries the last one seen.
      let resumeFrom = input?.lastEventId ?? timeMark();
      for await (const message of liveChanges(ctx.hangar, input?.lastEventId, signal)) {
        if ("eventId" in message && message.eventId) resumeFrom = message.eventId;
        yield tracked(resumeFrom, message);
      }
    }),
});
