// guest-network-get-interfaces' answer, as qemu-guest-agent 7.2 gives it on a Debian guest
// with a NAT and a bridged NIC, read into what a person can use.
import { describe, expect, it } from "vitest";
import { parseGuestInterfaces } from "./guest-agent.ts";

const answer = [
  {
    name: "lo",
    "ip-addresses": [
      { "ip-address-type": "ipv4", "ip-address": "127.0.0.1", prefix: 8 },
      { "ip-address-type": "ipv6", "ip-address": "::1", prefix: 128 },
    ],
    statistics: { "rx-bytes": 0 },
    "hardware-address": "00:00:00:00:00:00",
  },
  {
    name: "enp0s2",
    "ip-addresses": [
      { "ip-address-type": "ipv4", "ip-address": "10.0.2.15", prefix: 24 },
      { "ip-address-type": "ipv6", "ip-address": "fec0::5054:ff:fe12:3456", prefix: 64 },
      { "ip-address-type": "ipv6", "ip-address": "fe80::5054:ff:fe12:3456", prefix: 64 },
    ],
    "hardware-address": "52:54:00:12:34:56",
  },
  { name: "enp0s3", "hardware-address": "52:54:00:12:34:57" },
];

describe("guest-network-get-interfaces", () => {
  it("keeps each interface but loopback, with its addresses but IPv6 link-local ones", () => {
    expect(parseGuestInterfaces(answer)).toEqual([
      {
        name: "enp0s2",
        mac: "52:54:00:12:34:56",
        addresses: [
          { family: "ipv4", address: "10.0.2.15", prefix: 24 },
          { family: "ipv6", address: "fec0::5054:ff:fe12:3456", prefix: 64 },
        ],
      },
      // A NIC still without a lease has no addresses yet.
      { name: "enp0s3", mac: "52:54:00:12:34:57", addresses: [] },
    ]);
  });

  it("reads nothing from an answer of another shape", () => {
    expect(parseGuestInterfaces(undefined)).toBeUndefined();
    expect(parseGuestInterfaces({ name: "eth0" })).toBeUndefined();
    expect(parseGuestInterfaces([{ name: "eth0", "ip-addresses": [{ "ip-address-type": "ipx", "ip-address": "1", prefix: 1 }] }])).toBeUndefined();
  });
});
