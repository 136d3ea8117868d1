/**
 * Evacuating a host (Incus' `cluster evacuate` and `restore`, Proxmox's maintenance mode):
 * its VMs go to other hosts, a Running one stopped, moved and started again there, so the
 * machine can be updated or rebooted. Each VM is relocated on its own; one that cannot go
 * stays, with the reason. The steps are injected: host.evacuate runs them on the evacuated
 * host, host.restore through the VMs' own hosts (server/api/host.ts).
 */
import { userMessage } from "../errors.ts";

/** What an evacuation looks at of a VM. */
export interface EvacuatedVm {
  id: string;
  name: string;
  state: string;
  memoryMiB: number;
  /** It waits in a pool (not handed out): its pool keeps it on the pool's host. */
  waitsInPool: string | null;
}

export interface RelocationSteps<V extends EvacuatedVm = EvacuatedVm> {
  /** The host a VM goes to; `running`: it must have room to start there. Throws when none can take it. */
  target(vm: V, running: boolean): Promise<{ id: string; name: string }>;
  stop(vmId: string): Promise<void>;
  /** Moves the Stopped VM to `hostId`. */
  move(vmId: string, hostId: string): Promise<void>;
  /** Starts it (on whichever host it is now). */
  start(vmId: string): Promise<void>;
}

export interface Relocated {
  id: string;
  name: string;
  /** The host it went to. */
  to: string;
  /** It ran before and runs again there. */
  restarted: boolean;
  /** What went wrong after it moved (it did not start again there), or null. */
  problem: string | null;
}

export interface Stayed {
  id: string;
  name: string;
  reason: string;
}

export interface Relocation {
  moved: Relocated[];
  stayed: Stayed[];
}

/** VMs relocated at once: each move is mostly disk I/O, and each restart a guest's boot. */
const AT_ONCE = 2;

/** Why a VM in `state` is not relocated, or undefined when it is (Stopped, Suspended, Running). */
function whyNot(vm: EvacuatedVm): string | undefined {
  if (vm.waitsInPool !== null) return `it waits in pool ${vm.waitsInPool}, whose VMs live on the pool's host; delete or shrink the pool to empty the host`;
  if (vm.state === "Stopped" || vm.state === "Suspended" || vm.state === "Running") return undefined;
  return `it is ${vm.state}; try again once it is Running, Stopped or Suspended`;
}

/**
 * Relocates one VM: Stopped and Suspended move (a Suspended one with its saved state, where
 * the move allows it); Running stops, moves, and starts there (or again where it was, if the
 * move failed).
 */
async function relocate<V extends EvacuatedVm>(vm: V, steps: RelocationSteps<V>): Promise<Relocated | Stayed> {
  const not = whyNot(vm);
  if (not !== undefined) return { id: vm.id, name: vm.name, reason: not };
  const running = vm.state === "Running";
  try {
    const target = await steps.target(vm, running);
    if (running) await steps.stop(vm.id);
    try {
      await steps.move(vm.id, target.id);
    } catch (error) {
      if (!running) throw error;
      // It stays where it was, and runs there again as before.
      const again = await steps.start(vm.id).then(
        () => "it runs again where it was",
        (startError: unknown) => `it did not start again where it was either: ${userMessage(startError)}`,
      );
      return { id: vm.id, name: vm.name, reason: `${userMessage(error)} (${again})` };
    }
    if (!running) return { id: vm.id, name: vm.name, to: target.name, restarted: false, problem: null };
    const problem = await steps.start(vm.id).then(
      () => null,
      (error: unknown) => `it did not start there: ${userMessage(error)}`,
    );
    return { id: vm.id, name: vm.name, to: target.name, restarted: problem === null, problem };
  } catch (error) {
    return { id: vm.id, name: vm.name, reason: userMessage(error) };
  }
}

/** Relocates `vms`, a few at a time; every VM ends in `moved` or in `stayed`. */
export async function relocateAll<V extends EvacuatedVm>(vms: V[], steps: RelocationSteps<V>): Promise<Relocation> {
  const outcome: Relocation = { moved: [], stayed: [] };
  const queue = [...vms];
  const worker = async () => {
    for (let vm = queue.shift(); vm !== undefined; vm = queue.shift()) {
      const result = await relocate(vm, steps);
      if ("reason" in result) outcome.stayed.push(result);
      else outcome.moved.push(result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, vms.length) }, worker));
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  return { moved: outcome.moved.sort(byName), stayed: outcome.stayed.sort(byName) };
}

/** "2 VMs moved (1 started again there), 1 stayed" for an event or a CLI line. */
export function relocationSummary({ moved, stayed }: Relocation): string {
  const restarted = moved.filter((vm) => vm.restarted).length;
  const plural = (n: number) => `${n} VM${n === 1 ? "" : "s"}`;
  return `${plural(moved.length)} moved${restarted > 0 ? ` (${restarted} started again there)` : ""}, ${stayed.length} stayed`;
}
