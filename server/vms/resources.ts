/**
 * A VM's CPUs and memory, changed while it is stopped (as `limactl edit` or Proxmox's
 * Hardware tab): qemu gets them at the next start. A suspended VM keeps what its saved
 * state was made with; a pool's members keep what the pool gives them.
 */
import { assertWithinQuota } from "../auth/users.ts";
import { HangarError } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { announceRowChange } from "./bus.ts";

export interface ResizeInput {
  id: string;
  cpus?: number;
  memoryMiB?: number;
}

/** Sets VM `id`'s CPUs and memory (either or both); returns what it has now. */
export async function resizeVm(hangar: Hangar, input: ResizeInput, actor: string, callerId?: string) {
  const { db } = hangar;
  if (input.cpus === undefined && input.memoryMiB === undefined) {
    throw new HangarError("INVALID_INPUT", "Give cpus, memoryMiB or both.");
  }
  const vm = await db.vm.findUnique({ where: { id: input.id }, include: { pool: { select: { name: true } }, owner: { select: { email: true } } } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.pool && !vm.acquiredAt) {
    throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in pool "${vm.pool.name}", which gives its VMs their CPUs and memory; acquire it first.`);
  }
  if (vm.state === "Suspended") {
    throw new HangarError(
      "VM_INVALID_TRANSITION",
      `VM "${vm.name}" is Suspended, and its saved state needs the CPUs and memory it was suspended with; start it and stop it first.`,
    );
  }
  if (vm.state !== "Stopped" || hangar.lifecycle.isBusy(vm.id)) {
    throw new HangarError("VM_INVALID_TRANSITION", `VM "${vm.name}" is ${vm.state}; stop it before changing its CPUs or memory.`);
  }
  const cpus = input.cpus ?? vm.cpus;
  const memoryMiB = input.memoryMiB ?? vm.memoryMiB;
  if (cpus === vm.cpus && memoryMiB === vm.memoryMiB) return { cpus, memoryMiB };

  const host = await db.host.findUnique({ where: { id: vm.hostId ?? "" }, select: { name: true, memoryLimitMiB: true } });
  if (host && host.memoryLimitMiB > 0 && memoryMiB > host.memoryLimitMiB) {
    throw new HangarError(
      "INVALID_INPUT",
      `Host ${host.name} lets its VMs have ${host.memoryLimitMiB} MiB of memory in all, so VM "${vm.name}" could never start with ${memoryMiB} MiB; ask for less.`,
    );
  }
  // Giving less never breaks a quota, even one lowered since the VM was made.
  if (vm.ownerId && (cpus > vm.cpus || memoryMiB > vm.memoryMiB)) {
    await assertWithinQuota(db, vm.ownerId, cpus, memoryMiB, {
      resizing: vm.id,
      owner: vm.ownerId === callerId ? undefined : (vm.owner?.email ?? "its owner"),
    });
  }
  // Only while it is still Stopped: a start that won the race keeps what it started with.
  const changed = await db.vm.updateMany({ where: { id: vm.id, state: "Stopped" }, data: { cpus, memoryMiB } });
  if (changed.count === 0) throw new HangarError("VM_BUSY", `VM "${vm.name}" started meanwhile; stop it first.`);
  const parts = [cpus !== vm.cpus ? `CPUs ${vm.cpus} → ${cpus}` : "", memoryMiB !== vm.memoryMiB ? `memory ${vm.memoryMiB} → ${memoryMiB} MiB` : ""];
  const event = await hangar.recorder.record({
    stream: "vm",
    vm,
    actor,
    action: "resize",
    ok: true,
    message: `${parts.filter(Boolean).join(", ")}; in effect from the next start`,
  });
  await announceRowChange(hangar, vm, event.id);
  return { cpus, memoryMiB };
}
