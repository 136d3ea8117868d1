import { z } from "zod";
import { atLeast, canControlVm } from "../auth/permissions.ts";
import { HangarError } from "../errors.ts";
import { terminalPath } from "../terminal/bridge.ts";
import { openSshSessions } from "../terminal/ssh-session.ts";
import { TERMINAL_KINDS } from "../terminal/tickets.ts";
import { id } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

export const terminalRouter = router({
  /** Open terminals by kind and live SSH connections: what is left when nobody watches. */
  sessions: procedure.meta({ permission: "admin" }).query(({ ctx }) => ({ ...ctx.hangar.terminals.counts(), ssh: openSshSessions() })),
  /**
   * A single-use ticket (30 s) for /ws/terminal. Console: anyone who may read, typing only
   * on VMs they may control. Display: the same, while it runs (view-only for readers, held
   * by the bridge). Shell and tunnel (raw bytes to the VM's SSH port, for the caller's own
   * ssh client): the VM's controllers, while it runs. Monitor: admins. A ticket asked for with
   * an API token may be redeemed without an Origin (the CLI sends none).
   */
  ticket: procedure
    .meta({ permission: "read" })
    .input(z.object({ vmId: id, kind: z.enum(TERMINAL_KINDS, "kind must be console, shell, monitor, display or tunnel.") }))
    .mutation(async ({ ctx, input }) => {
      const principal = ctx.principal;
      if (!principal) throw new HangarError("UNAUTHENTICATED", "Sign in first.");
      const vm = await ctx.hangar.db.vm.findUnique({ where: { id: input.vmId } });
      if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.vmId}".`);
      const controls = canControlVm(principal, vm);
      if (input.kind === "monitor" && principal.role !== "admin") throw new HangarError("FORBIDDEN", "Only admins may open the qemu monitor.");
      if ((input.kind === "shell" || input.kind === "tunnel") && !controls) {
        const what = input.kind === "shell" ? "shells" : "SSH tunnels";
        throw new HangarError("FORBIDDEN", atLeast(principal, "operator") ? `You can only open ${what} on VMs you own.` : `Viewers cannot open ${what}.`);
      }
      if (input.kind !== "console" && vm.state !== "Running") throw new HangarError("NOT_RUNNING", `VM "${vm.name}" is ${vm.state}; start it first.`);
      const readOnly = (input.kind === "console" || input.kind === "display") && !controls;
      const ticket = await ctx.hangar.tickets.issue({
        userId: principal.userId,
        actor: ctx.actor,
        sessionId: principal.sessionId,
        tokenId: principal.tokenId,
        vmId: vm.id,
        kind: input.kind,
        readOnly,
        viaToken: principal.via === "token",
      });
      return { ticket, path: terminalPath(ticket, vm.id, input.kind), readOnly };
    }),
});
