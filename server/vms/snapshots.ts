/**
 * Disk snapshots of a VM: create, list, revert, delete. They do not change the VM's
 * lifecycle state; each is recorded as an event. Allowed while Stopped (qemu-img on the
 * file) or Running (savevm/loadvm/delvm in the running qemu, with the VM's memory).
 */
import { SnapshotNotFoundError } from "../driver/manager.ts";
import { HangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { announceRowChange } from "./bus.ts";
import { stoppedMeanwhile } from "./lifecycle.ts";

type SnapshotAction = "create" | "revert" | "delete";

async function settledVm(hangar: Hangar, id: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  if (vm.state !== "Stopped" && vm.state !== "Running") {
    throw new HangarError("VM_BUSY", `VM "${vm.name}" is ${vm.state}; snapshots need it Stopped or Running.`);
  }
  if (hangar.lifecycle.isBusy(id)) throw new HangarError("VM_BUSY", `VM "${vm.name}" has an action under way; try again once it settles.`);
  return vm;
}

export async function listSnapshots(hangar: Hangar, id: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  return hangar.driverFor(id).listSnapshots();
}

export async function changeSnapshot(hangar: Hangar, input: { id: string; name: string; action: SnapshotAction }, actor: string) {
  const vm = await settledVm(hangar, input.id);
  const driver = hangar.driverFor(vm.id);
  const started = Date.now();
  let clock = "";
  // Locked meanwhile, as Proxmox locks a VM for a snapshot: a start during qemu-img's work on
  // the disk, or a stop during savevm, is refused with VM_BUSY instead of failing midway.
  const doing = { create: "taking snapshot", revert: "reverting to snapshot", delete: "deleting snapshot" }[input.action];
  try {
    await hangar.lifecycle.withLock(vm.id, `${doing} ${input.name}`, ["Stopped", "Running"], async () => {
      if (input.action === "create") {
        if ((await driver.listSnapshots()).some((s) => s.name === input.name)) {
          throw new HangarError("ALREADY_EXISTS", `VM "${vm.name}" already has a snapshot named "${input.name}".`);
        }
        await driver.createSnapshot(input.name);
      } else if (input.action === "revert") {
        await driver.revertSnapshot(input.name);
        // A live snapshot brings back the guest's clock of that moment: set it to the host's
        // as a resume does (through the guest agent), else say it is behind. A qemu that ended
        // meanwhile had its disk reverted, not a guest: no clock to speak of.
        if (vm.state === "Running") {
          clock = await driver.syncGuestClock().then(
            (set) =>
              set ? "; guest clock set to the host's" : "; no guest agent answered: the guest's clock is at the snapshot's time until it syncs itself (NTP)",
            () => "",
          );
        }
      } else {
        await driver.deleteSnapshot(input.name);
      }
    });
  } catch (error) {
    if (error instanceof HangarError) throw error;
    if (error instanceof SnapshotNotFoundError) throw new HangarError("NOT_FOUND", `VM "${vm.name}" has no snapshot named "${input.name}".`);
    // A running VM's snapshot is the work of its qemu: one that ended meanwhile (killed) is no host failure.
    const ended = vm.state === "Running" && (await stoppedMeanwhile(hangar, vm.id, error));
    const failed = await hangar.recorder.record({
      stream: "vm",
      vm,
      actor,
      action: `snapshot-${input.action}`,
      ok: false,
      message: `Snapshot ${input.name}: ${ended ? "the VM's qemu ended during it" : userMessage(error)}`,
    });
    await announceRowChange(hangar, vm, failed.id);
    if (ended) {
      throw new HangarError(
        "NOT_RUNNING",
        `VM "${vm.name}" stopped during the snapshot ${input.action} of "${input.name}" (its qemu ended); list its snapshots to see where it stands, then start it again.`,
        { cause: error },
      );
    }
    throw new HangarError("DRIVER_FAILED", `Snapshot ${input.action} of "${input.name}" on VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
  }
  const done = await hangar.recorder.record({
    stream: "vm",
    vm,
    actor,
    action: `snapshot-${input.action}`,
    ok: true,
    message: `Snapshot ${input.name} (${Date.now() - started} ms)${clock}`,
  });
  await announceRowChange(hangar, vm, done.id);
  return listSnapshots(hangar, vm.id);
}
