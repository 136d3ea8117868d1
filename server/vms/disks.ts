/**
 * A VM's disk: grown while the VM is stopped or running (the guest's cloud-init grows its
 * root partition at the next boot), made into an image, and its size and use on the host.
 */
import { AlreadyRunningError, DiskHasSnapshotsError, DiskShrinkError } from "../driver/manager.ts";
import { HangarError, isHangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { announceRowChange } from "./bus.ts";
import { stoppedMeanwhile } from "./lifecycle.ts";

const GIB = 1024 ** 3;

/**
 * Grows VM `id`'s disk to `diskGiB`, Stopped or Running (as Proxmox and Incus do); disks
 * never shrink. A Suspended VM's saved state holds the disk's size: not then.
 */
export async function resizeDisk(hangar: Hangar, input: { id: string; diskGiB: number }, actor: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  const running = vm.state === "Running";
  if ((vm.state !== "Stopped" && !running) || hangar.lifecycle.isBusy(vm.id)) {
    throw new HangarError("VM_INVALID_TRANSITION", `VM "${vm.name}" is ${vm.state}; its disk grows while it is Stopped or Running.`);
  }
  try {
    await hangar.lifecycle.withLock(vm.id, "growing its disk", [running ? "Running" : "Stopped"], () =>
      hangar.driverFor(vm.id).resizeDisk(input.diskGiB * GIB),
    );
  } catch (error) {
    if (error instanceof DiskShrinkError) {
      throw new HangarError("INVALID_INPUT", `The disk of VM "${vm.name}" is ${formatGiB(error.currentBytes)} GiB; disks only grow, so ask for more.`);
    }
    if (error instanceof DiskHasSnapshotsError) {
      throw new HangarError("INVALID_INPUT", `VM "${vm.name}" has snapshots, and a disk with snapshots cannot be resized; delete them first.`);
    }
    if (isHangarError(error)) throw error;
    if (running && (await stoppedMeanwhile(hangar, vm.id, error))) {
      throw new HangarError("NOT_RUNNING", `VM "${vm.name}" stopped while its disk grew (its qemu ended); grow it again, Stopped or once it runs.`, {
        cause: error,
      });
    }
    throw new HangarError("DRIVER_FAILED", `Growing the disk of VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
  }
  await hangar.db.vm.update({ where: { id: vm.id }, data: { diskGiB: input.diskGiB } });
  const message = running
    ? `Disk grown to ${input.diskGiB} GiB while running: the guest sees it now; cloud-init grows its root partition at the next boot (or run growpart and resize2fs)`
    : `Disk grown to ${input.diskGiB} GiB`;
  const event = await hangar.recorder.record({ stream: "vm", vm, actor, action: "disk-resize", ok: true, message });
  await announceRowChange(hangar, vm, event.id);
  return diskOf(hangar, vm.id);
}

/**
 * A new image `name` from Stopped VM `id`'s disk, as it is now (its snapshots stay with the
 * VM); VMs made from it boot with the VM's image's firmware, boot files and login user. The
 * VM may not start or be deleted meanwhile. Each VM made from it is a new instance to
 * cloud-init (an instance-id of its own), so cloud-init runs for it as for a stock image.
 */
export async function publishDisk(hangar: Hangar, input: { id: string; name: string }, actor: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id }, include: { image: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.state !== "Stopped") throw new HangarError("VM_INVALID_TRANSITION", `VM "${vm.name}" is ${vm.state}; stop it before making an image of its disk.`);
  const driver = hangar.driverFor(vm.id);
  try {
    const image = await hangar.lifecycle.withLock(vm.id, "making an image from its disk", ["Stopped"], () =>
      hangar.images.publishImage({ name: input.name, writeDisk: (target) => driver.exportDisk(target), from: vm.image }),
    );
    const event = await hangar.recorder.record({ stream: "vm", vm, actor, action: "publish", ok: true, message: `Image ${image.name} made from its disk` });
    await announceRowChange(hangar, vm, event.id);
    return image;
  } catch (error) {
    if (isHangarError(error)) throw error;
    if (error instanceof AlreadyRunningError) throw new HangarError("VM_BUSY", `VM "${vm.name}" started meanwhile; stop it first.`);
    throw new HangarError("DRIVER_FAILED", `Making an image of VM "${vm.name}"'s disk failed: ${userMessage(error)}`, { cause: error });
  }
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
