/**
 * Pure: how much memory a host lets its VMs take, what they take now, and which host a new
 * VM goes to. No I/O: server/cluster/cluster.ts reads the rows and calls these.
 */

/** States in which a VM's qemu runs and holds its memory (Suspended and Stopped hold none). */
export const HOLDS_MEMORY = ["Starting", "Running", "Stopping", "Suspending"] as const;

/** The memory VMs may take in all: RAM x overcommit, minus the reserve kept for the host. */
export function memoryLimitMiB(totalMiB: number, overcommit: number, reserveMiB: number): number {
  return Math.max(0, Math.floor(totalMiB * overcommit) - reserveMiB);
}

export interface HostLoad {
  id: string;
  name: string;
  online: boolean;
  memoryLimitMiB: number;
  /** Memory of the host's VMs that run (HOLDS_MEMORY). */
  allocatedMemoryMiB: number;
  /** The host holds the image's file (false: it would have to fetch it from a peer first). */
  hasImage: boolean;
}

export function freeMiB(host: Pick<HostLoad, "memoryLimitMiB" | "allocatedMemoryMiB">): number {
  return host.memoryLimitMiB - host.allocatedMemoryMiB;
}

/** Why `host` cannot take a VM of `memoryMiB` more, or undefined when it can. */
export function noRoom(host: Pick<HostLoad, "name" | "memoryLimitMiB" | "allocatedMemoryMiB">, memoryMiB: number): string | undefined {
  if (freeMiB(host) >= memoryMiB) return undefined;
  return (
    `Host ${host.name} has ${Math.max(0, freeMiB(host))} MiB of memory left for VMs (of ${host.memoryLimitMiB} MiB; ` +
    `${host.allocatedMemoryMiB} MiB taken by running VMs), not the ${memoryMiB} MiB this VM needs; ` +
    "stop or suspend a VM there, ask for less memory, or pick another host."
  );
}

export type Placement = { host: HostLoad } | { refusal: string };

/**
 * The host for a new VM of `memoryMiB`: among the live hosts with room, one that holds the
 * image before one that would fetch it, then the one with the most memory left, then by
 * name (so equal hosts are picked the same way every time).
 */
export function choosePlacement(hosts: HostLoad[], memoryMiB: number): Placement {
  const live = hosts.filter((h) => h.online);
  if (live.length === 0) return { refusal: "No host is online; start Hangar on a host first." };
  const fitting = live.filter((h) => noRoom(h, memoryMiB) === undefined);
  if (fitting.length === 0) {
    const most = Math.max(...live.map((h) => Math.max(0, freeMiB(h))));
    return {
      refusal: `No online host has ${memoryMiB} MiB of memory left for a VM (the most any has is ${most} MiB); stop or suspend VMs, ask for less memory, or add a host.`,
    };
  }
  const [best] = [...fitting].sort((a, b) => Number(b.hasImage) - Number(a.hasImage) || freeMiB(b) - freeMiB(a) || a.name.localeCompare(b.name));
  return best ? { host: best } : { refusal: "No host can take this VM." };
}
