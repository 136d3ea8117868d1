/**
 * A running VM's network addresses as its guest reports them (the IPs Proxmox and Incus show
 * from the guest agent): how a VM on a bridge is reached on the LAN, where its address comes
 * from that network's DHCP and Hangar has no other way to know it. Asked of the guest agent
 * on demand; a guest without one reports nothing.
 */
import type { GuestInterface } from "../driver/manager.ts";
import { HangarError } from "../errors.ts";
import type { Hangar } from "../hangar.ts";

export interface VmAddresses {
  /** null: nothing reported (not running, or no guest agent answers). */
  interfaces: GuestInterface[] | null;
  /** Where they come from, or why there are none, in words. */
  detail: string;
}

export async function vmAddresses(hangar: Hangar, id: string): Promise<VmAddresses> {
  const vm = await hangar.db.vm.findUnique({ where: { id }, select: { name: true, state: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  if (vm.state !== "Running") return { interfaces: null, detail: `VM "${vm.name}" is ${vm.state}; its guest reports its addresses while it runs.` };
  const interfaces = await hangar
    .driverFor(id)
    .guestInterfaces()
    .catch(() => null);
  if (!interfaces) {
    return {
      interfaces: null,
      detail: "No guest agent reports them: the image does not run qemu-guest-agent, or the guest has not started it yet.",
    };
  }
  return { interfaces, detail: "Reported by the guest agent." };
}
