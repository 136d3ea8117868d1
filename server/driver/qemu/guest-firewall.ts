/**
 * The guests' firewall. In nat mode qemu's user network makes every outbound connection of
 * a guest from the qemu process itself, and 10.0.2.2 stands for the host's loopback, so a
 * guest could reach services that listen only on the host (a database trusting local
 * connections, Hangar's own port). When qemu runs as its own user (Hangar runs as root),
 * one nftables rule refuses new connections from that user to any address of this host,
 * except DNS (user networking forwards the guest's DNS to the host's resolver, which may
 * listen on loopback). Guests still reach everything else, as under Lima, Incus or Proxmox.
 */
import { execa } from "execa";

export const FIREWALL_TABLE = "hangar";

/** The ruleset: pure, so a table test shows what is loaded. Replaces an older table whole. */
export function guestFirewallRules(qemuUser: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(qemuUser)) throw new Error(`"${qemuUser}" is not a user name`);
  return [
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    "  chain guests-to-host {",
    "    type filter hook output priority filter; policy accept;",
    `    meta skuid "${qemuUser}" ct state new fib daddr type local meta l4proto { tcp, udp } th dport != 53 counter reject`,
    "  }",
    "}",
    "",
  ].join("\n");
}

export type FirewallResult = { applied: true } | { applied: false; reason: string };

/**
 * Loads the rules (idempotent; nftables keeps them until the host reboots, and every start
 * of Hangar loads them again). Only meaningful when qemu runs as `qemuUser`.
 */
export async function applyGuestFirewall(qemuUser: string): Promise<FirewallResult> {
  const result = await execa("nft", ["-f", "-"], { input: guestFirewallRules(qemuUser), reject: false });
  if (result.failed) {
    const missing = "code" in result && result.code === "ENOENT";
    const reason = missing ? "nft is not installed" : result.stderr.split("\n")[0] || "nft failed";
    return { applied: false, reason };
  }
  return { applied: true };
}
