/**
 * Start at boot (Proxmox's "Start at boot", Incus' boot.autostart): the first Hangar start
 * on a new boot of the machine starts this host's VMs marked autostart, whatever state they
 * were left in (a Suspended one resumes). A restart of Hangar alone starts none: the boot is
 * recorded on the host's row once its VMs are started, so a crash part way through starts
 * the rest at the next start. They start one after another in their order (Proxmox's start
 * order; lower first, then those without one, ties by name), each followed by its delay.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { HangarError, userMessage } from "../errors.ts";
import type { Hangar } from "../hangar.ts";
import { announceRowChange } from "./bus.ts";

/** The actor of the starts, in the VMs' events. */
export const AUTOSTART_ACTOR = "autostart";
/** The actor of the stops when the machine shuts down. */
export const SHUTDOWN_ACTOR = "host shutdown";

/** Linux's id of the running boot of the machine; undefined where there is none. */
export async function machineBootId(file = "/proc/sys/kernel/random/boot_id"): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trim() || undefined;
}

/** The order autostart VMs start in: by order (none last), then by name. */
export function bootOrder<T extends { name: string; autostartOrder: number | null }>(vms: T[]): T[] {
  const rank = (vm: T) => vm.autostartOrder ?? Number.POSITIVE_INFINITY;
  return [...vms].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Starts this host's autostart VMs once per boot `bootId`; returns the names started and not
 * started. `wait` is how a delay is waited (tests count them instead).
 */
export async function startAtBoot(
  hangar: Hangar,
  bootId: string | undefined,
  wait: (ms: number) => Promise<unknown> = sleep,
): Promise<{ started: string[]; failed: string[] }> {
  const done = { started: [] as string[], failed: [] as string[] };
  if (!bootId) return done;
  const { db } = hangar;
  const self = await hangar.lifecycle.hostId();
  const host = await db.host.findUnique({ where: { id: self }, select: { bootId: true } });
  if (host?.bootId === bootId) return done;
  const vms = await db.vm.findMany({
    // A pool starts its own waiting members.
    where: { hostId: self, autostart: true, state: { in: ["Stopped", "Suspended"] }, OR: [{ poolId: null }, { acquiredAt: { not: null } }] },
    select: { id: true, name: true, autostartOrder: true, autostartDelaySec: true },
  });
  const ordered = bootOrder(vms);
  for (const [index, vm] of ordered.entries()) {
    try {
      await hangar.lifecycle.startVm(vm.id, AUTOSTART_ACTOR);
      done.started.push(vm.name);
      if (vm.autostartDelaySec > 0 && index < ordered.length - 1) await wait(vm.autostartDelaySec * 1000);
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

export interface AutostartInput {
  id: string;
  autostart: boolean;
  /** Its place in the start order; null: none; absent: as it was. */
  order?: number | null;
  /** Seconds to wait after it starts before the next; absent: as it was. */
  delaySec?: number;
}

/** Marks VM `id` to start, or not, when its host boots, and where it comes then. */
export async function setAutostart(hangar: Hangar, input: AutostartInput, actor: string) {
  const vm = await hangar.db.vm.findUnique({
    where: { id: input.id },
    select: {
      id: true,
      name: true,
      autostart: true,
      autostartOrder: true,
      autostartDelaySec: true,
      acquiredAt: true,
      pool: { select: { name: true } },
    },
  });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.pool && !vm.acquiredAt) {
    throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in pool "${vm.pool.name}", which starts its own members; acquire it first.`);
  }
  const next = {
    autostart: input.autostart,
    order: input.order === undefined ? vm.autostartOrder : input.order,
    delaySec: input.delaySec ?? vm.autostartDelaySec,
  };
  if (vm.autostart === next.autostart && vm.autostartOrder === next.order && vm.autostartDelaySec === next.delaySec) return next;
  await hangar.db.vm.update({
    where: { id: vm.id },
    data: { autostart: next.autostart, autostartOrder: next.order, autostartDelaySec: next.delaySec },
  });
  const when = [next.order !== null ? `order ${next.order}` : "", next.delaySec > 0 ? `then ${next.delaySec} s before the next` : ""].filter(Boolean);
  const message = next.autostart ? `Starts when its host boots${when.length > 0 ? ` (${when.join(", ")})` : ""}` : "No longer starts when its host boots";
  const event = await hangar.recorder.record({ stream: "vm", vm, actor, action: "autostart", ok: true, message });
  await announceRowChange(hangar, vm, event.id);
  return next;
}

/**
 * Whether the machine itself is shutting down or rebooting (systemd says "stopping"), not
 * just Hangar being stopped or restarted. False where systemd does not answer.
 */
export async function machineStopping(): Promise<boolean> {
  const result = await execa("systemctl", ["is-system-running"], { reject: false, timeout: 5000 }).catch(() => undefined);
  return result?.stdout.trim() === "stopping";
}

/**
 * The groups VMs stop in when the machine shuts down: the reverse of the start order
 * (Proxmox's), so those without an order first, then the highest order down; a group stops
 * all at once.
 */
export function shutdownGroups<T extends { autostartOrder: number | null }>(vms: T[]): T[][] {
  const byOrder = new Map<number | null, T[]>();
  for (const vm of vms) byOrder.set(vm.autostartOrder, [...(byOrder.get(vm.autostartOrder) ?? []), vm]);
  const orders = [...byOrder.keys()].sort((a, b) => (a === null ? -1 : b === null ? 1 : b - a));
  return orders.map((order) => byOrder.get(order) ?? []);
}

/**
 * Stops this host's running VMs as the machine shuts down: without it, systemd ends qemu
 * at the last step of the shutdown and the guests lose what they had not written. Each gets
 * the power button and `timeoutMs` to shut down, then is forced off, as a stop is. A pool's
 * waiting members are left: the pool makes them again. Those marked to start at boot start
 * at the next one. Returns the names stopped and not stopped.
 */
export async function stopForShutdown(hangar: Hangar, timeoutMs: number): Promise<{ stopped: string[]; failed: string[] }> {
  const done = { stopped: [] as string[], failed: [] as string[] };
  const self = await hangar.lifecycle.hostId();
  const vms = await hangar.db.vm.findMany({
    where: { hostId: self, state: "Running", OR: [{ poolId: null }, { acquiredAt: { not: null } }] },
    select: { id: true, name: true, autostartOrder: true },
  });
  for (const group of shutdownGroups(vms)) {
    await Promise.all(
      group.map(async (vm) => {
        try {
          await hangar.lifecycle.stopVm(vm.id, timeoutMs, SHUTDOWN_ACTOR);
          done.stopped.push(vm.name);
        } catch {
          // The stop recorded its own failure on the VM.
          done.failed.push(vm.name);
        }
      }),
    );
  }
  return done;
}
