/**
 * Start at boot (Proxmox's "Start at boot", Incus' boot.autostart): the first Hangar start
 * on a new boot of the machine starts this host's VMs marked autostart, whatever state they
 * were left in (a Suspended one resumes). A restart of Hangar alone starts none: the boot is
 * recorded on the host's row once its VMs are started, so a crash part way through starts
 * the rest at the next start.
 */
import { readFile } from "node:fs/promises";
import { HangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";

/** The actor of the starts, in the VMs' events. */
export const AUTOSTART_ACTOR = "autostart";

/** Linux's id of the running boot of the machine; undefined where there is none. */
export async function machineBootId(file = "/proc/sys/kernel/random/boot_id"): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trim() || undefined;
}

/** Starts this host's autostart VMs once per boot `bootId`; returns the names started and not started. */
export async function startAtBoot(hangar: Hangar, bootId: string | undefined): Promise<{ started: string[]; failed: string[] }> {
  const done = { started: [] as string[], failed: [] as string[] };
  if (!bootId) return done;
  const { db } = hangar;
  const self = await hangar.lifecycle.hostId();
  const host = await db.host.findUnique({ where: { id: self }, select: { bootId: true } });
  if (host?.bootId === bootId) return done;
  const vms = await db.vm.findMany({
    // A pool starts its own waiting members.
    where: { hostId: self, autostart: true, state: { in: ["Stopped", "Suspended"] }, OR: [{ poolId: null }, { acquiredAt: { not: null } }] },
    orderBy: { name: "asc" },
    select: { id: true, name: true },
  });
  for (const vm of vms) {
    try {
      await hangar.lifecycle.startVm(vm.id, AUTOSTART_ACTOR);
      done.started.push(vm.name);
    } catch (error) {
      done.failed.push(vm.name);
      await hangar.recorder.record({
        stream: "vm",
        vm,
        actor: AUTOSTART_ACTOR,
        action: "autostart",
        ok: false,
        message: `Not started at boot: ${userMessage(error)}`,
      });
    }
  }
  await db.host.update({ where: { id: self }, data: { bootId } });
  return done;
}

/** Marks VM `id` to start, or not, when its host boots. */
export async function setAutostart(hangar: Hangar, input: { id: string; autostart: boolean }, actor: string) {
  const vm = await hangar.db.vm.findUnique({
    where: { id: input.id },
    select: { id: true, name: true, autostart: true, acquiredAt: true, pool: { select: { name: true } } },
  });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.pool && !vm.acquiredAt) {
    throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in pool "${vm.pool.name}", which starts its own members; acquire it first.`);
  }
  if (vm.autostart === input.autostart) return { autostart: vm.autostart };
  await hangar.db.vm.update({ where: { id: vm.id }, data: { autostart: input.autostart } });
  const message = input.autostart ? "Starts when its host boots" : "No longer starts when its host boots";
  await hangar.recorder.record({ stream: "vm", vm, actor, action: "autostart", ok: true, message });
  return { autostart: input.autostart };
}
