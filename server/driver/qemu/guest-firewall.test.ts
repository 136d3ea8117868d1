import { describe, expect, it } from "vitest";
import { guestFirewallRules } from "./guest-firewall.ts";

describe("guestFirewallRules", () => {
  it("refuses new connections from qemu's user to this host's addresses, DNS aside, replacing an older table", () => {
    expect(guestFirewallRules("hangar-qemu")).toBe(`table inet hangar
delete table inet hangar
table inet hangar {
  chain guests-to-host {
    type filter hook output priority filter; policy accept;
    meta skuid "hangar-qemu" ct state new fib daddr type local meta l4proto { tcp, udp } th dport != 53 counter reject
  }
}
`);
  });

  it("refuses a user name that would change the rules", () => {
    expect(() => guestFirewallRules('x" accept; #')).toThrow(/not a user name/);
  });
});
