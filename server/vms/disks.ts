/**
 * A VM's disk: grown while the VM is stopped (the guest's cloud-init grows its root
 * partition at the next boot), and its size and use on the host.
 */
import { AlreadyRunningError, DiskHasSnapshotsError, DiskShrinkError } from "../driver/manager.ts";
import { HangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";

const GIB = 1024 ** 3;

/** Grows VM `id`'s disk to `diskGiB`. Stopped VMs only; disks never shrink. */
export async function resizeDisk(hangar: Hangar, input: { id: string; diskGiB: number }, actor: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.state !== "Stopped" || hangar.lifecycle.isBusy(vm.id)) {
    throw new HangarError("VM_INVALID_TRANSITION", `VM "${vm.name}" is ${vm.state}; stop it before growing its disk.`);
  }
  try {
    await hangar.driverFor(vm.id).resizeDisk(input.diskGiB * GIB);
  } catch (error) {
    if (error instanceof DiskShrinkError) {
      throw new HangarError("INVALID_INPUT", `The disk of VM "${vm.name}" is ${formatGiB(error.currentBytes)} GiB; disks only grow, so ask for more.`);
    }
    if (error instanceof DiskHasSnapshotsError) {
      throw new HangarError("INVALID_INPUT", `VM "${vm.name}" has snapshots, and a disk with snapshots cannot be resized; delete them first.`);
    }
    if (error instanceof AlreadyRunningError) throw new HangarError("VM_BUSY", `VM "${vm.name}" started meanwhile; stop it first.`);
    throw new HangarError("DRIVER_FAILED", `Growing the disk of VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
  }
  await hangar.db.vm.update({ where: { id: vm.id }, data: { diskGiB: input.diskGiB } });
  await hangar.recorder.record({ stream: "vm", vm, actor, action: "disk-resize", ok: true, message: `Disk grown to ${input.diskGiB} GiB` });
  return diskOf(hangar, vm.id);
}

/** The disk's size as the guest sees it and the bytes it takes on the host; null without a disk. */
export async function diskOf(hangar: Hangar, vmId: string) {
  return hangar
    .driverFor(vmId)
    .diskInfo()
    .catch(() => null);
}

function formatGiB(bytes: number): string {
  return (bytes / GIB).toFixed(bytes % GIB === 0 ? 0 : 1);
}
