/**
 * Port forwards of a VM, added and removed at any time: kept as PortForward rows (so every
 * start sets them up again, on the same host port while it is free) and, while the VM runs,
 * applied to its running qemu at once. They do not change the VM's state.
 */
import { HangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { announceRowChange } from "./bus.ts";
import { stoppedMeanwhile } from "./lifecycle.ts";

/** How a VM reaches the network; see NetworkConfig in server/driver/manager.ts. */
export const NETWORK_MODES = ["nat", "isolated", "bridge"] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/**
 * The host bridge a new VM joins (network "bridge"), or null. Placement puts it on a host
 * that opens that bridge to VMs (HANGAR_BRIDGES, in each host's row) and refuses it otherwise.
 */
export function checkNetwork(input: { network?: NetworkMode; bridge?: string }): string | null {
  if (input.network !== "bridge") {
    if (input.bridge) throw new HangarError("INVALID_INPUT", `A bridge is only for network "bridge", not "${input.network ?? "nat"}".`);
    return null;
  }
  if (!input.bridge) throw new HangarError("INVALID_INPUT", 'Name the host bridge a VM on network "bridge" joins; the Hosts page lists each host\'s bridges.');
  return input.bridge;
}

async function settledVm(hangar: Hangar, id: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id }, include: { ports: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  if (hangar.lifecycle.isBusy(id) || !["Stopped", "Running", "Suspended", "Initial"].includes(vm.state)) {
    throw new HangarError("VM_BUSY", `VM "${vm.name}" is ${vm.state}; change its forwards once it settles.`);
  }
  return vm;
}

/** Forwards host port `hostPort` (0 for a free one) to `guestPort`; returns the forward. */
export async function addForward(hangar: Hangar, input: { id: string; hostPort: number; guestPort: number }, actor: string) {
  const { db } = hangar;
  const vm = await settledVm(hangar, input.id);
  if (vm.ports.some((p) => p.guestPort === input.guestPort)) {
    throw new HangarError("ALREADY_EXISTS", `Guest port ${input.guestPort} of VM "${vm.name}" is already forwarded; remove that forward first.`);
  }
  if (input.hostPort !== 0) {
    const clash = await db.portForward.findFirst({
      where: { OR: [{ hostPort: input.hostPort }, { boundPort: input.hostPort }] },
      include: { vm: { select: { name: true } } },
    });
    if (clash || vm.sshPort === input.hostPort) {
      throw new HangarError("PORT_IN_USE", `Host port ${input.hostPort} is already forwarded to VM "${clash?.vm.name ?? vm.name}".`);
    }
  }
  const row = await db.portForward.create({ data: { vmId: vm.id, hostPort: input.hostPort, guestPort: input.guestPort } });
  let boundPort: number | null = null;
  if (vm.state === "Running") {
    try {
      boundPort = await hangar.driverFor(vm.id).addForward({ hostPort: input.hostPort, guestPort: input.guestPort });
    } catch (error) {
      // Its qemu went meanwhile (a stop racing this call): the forward is kept for the next start, as for a stopped VM.
      if (await stoppedMeanwhile(hangar, vm.id, error)) return keep(null);
      await db.portForward.delete({ where: { id: row.id } });
      if (input.hostPort !== 0)
        throw new HangarError("PORT_IN_USE", `Host port ${input.hostPort} is taken on this host; pick another or 0 for any free port.`, { cause: error });
      throw new HangarError("DRIVER_FAILED", `Forwarding guest port ${input.guestPort} of VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
    }
  }
  return keep(boundPort);

  async function keep(bound: number | null) {
    const forward = await db.portForward.update({ where: { id: row.id }, data: { boundPort: bound } });
    const where = bound ? `host port ${bound}` : input.hostPort ? `host port ${input.hostPort} from the next start` : "a free host port from the next start";
    const event = await hangar.recorder.record({
      stream: "vm",
      vm,
      actor,
      action: "forward-add",
      ok: true,
      message: `Guest port ${input.guestPort} forwarded on ${where}`,
    });
    await announceRowChange(hangar, vm, event.id);
    return forward;
  }
}

/** Removes the forward of `guestPort`, from the running qemu too. */
export async function removeForward(hangar: Hangar, input: { id: string; guestPort: number }, actor: string) {
  const vm = await settledVm(hangar, input.id);
  const forward = vm.ports.find((p) => p.guestPort === input.guestPort);
  if (!forward) throw new HangarError("NOT_FOUND", `VM "${vm.name}" has no forward of guest port ${input.guestPort}.`);
  if (vm.state === "Running" && forward.boundPort) {
    try {
      await hangar.driverFor(vm.id).removeForward(forward.boundPort);
    } catch (error) {
      // A qemu gone meanwhile took its forwards with it: only the row is left to remove.
      if (!(await stoppedMeanwhile(hangar, vm.id, error)))
        throw new HangarError("DRIVER_FAILED", `Removing the forward of guest port ${input.guestPort} of VM "${vm.name}" failed: ${userMessage(error)}`, {
          cause: error,
        });
    }
  }
  await hangar.db.portForward.delete({ where: { id: forward.id } });
  const event = await hangar.recorder.record({
    stream: "vm",
    vm,
    actor,
    action: "forward-remove",
    ok: true,
    message: `Guest port ${input.guestPort} no longer forwarded`,
  });
  await announceRowChange(hangar, vm, event.id);
  return { guestPort: input.guestPort };
}
