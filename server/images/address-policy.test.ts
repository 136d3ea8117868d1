import { describe, expect, it } from "vitest";
import { embeddedIpv4, hostAllowed, parseAllowList, refusedAddress } from "./address-policy.ts";

const none = parseAllowList([]);

describe("refusedAddress", () => {
  const refused = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "2001:0:4136:e378::1",
  ];
  it.each(refused)("refuses %s", (address) => {
    expect(refusedAddress(address, none)).toMatch(/internal address/);
  });

  const allowed = ["93.184.215.14", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::"];
  it.each(allowed)("lets %s through", (address) => {
    expect(refusedAddress(address, none)).toBeUndefined();
  });

  it("lets an allowed CIDR through, also in its IPv4-mapped form, and nothing beside it", () => {
    const policy = parseAllowList(["127.0.0.1/32", "fd00::/8"]);
    expect(refusedAddress("127.0.0.1", policy)).toBeUndefined();
    expect(refusedAddress("::ffff:127.0.0.1", policy)).toBeUndefined();
    expect(refusedAddress("fd12::1", policy)).toBeUndefined();
    expect(refusedAddress("127.0.0.2", policy)).toMatch(/internal/);
    expect(refusedAddress("::1", policy)).toMatch(/internal/);
  });
});

describe("parseAllowList", () => {
  it("takes host names, addresses and CIDRs", () => {
    const policy = parseAllowList(["files.lan", " 10.0.0.0/8 ", "::1", "Mirror.Example.COM."]);
    expect(hostAllowed("files.lan", policy)).toBe(true);
    expect(hostAllowed("mirror.example.com", policy)).toBe(true);
    expect(hostAllowed("other.lan", policy)).toBe(false);
    expect(refusedAddress("10.9.9.9", policy)).toBeUndefined();
    expect(refusedAddress("::1", policy)).toBeUndefined();
  });

  it.each(["10.0.0.0/33", "10.0.0.0/x", "bad host!", "files.lan/8", "::1/129"])("refuses %s", (entry) => {
    expect(() => parseAllowList([entry])).toThrow(entry);
  });
});

describe("embeddedIpv4", () => {
  it.each([
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["64:ff9b::c000:201", "192.0.2.1"],
    ["2002:c000:0201::1", "192.0.2.1"],
    ["2606:4700::1111", undefined],
    ["::1", undefined],
  ])("finds the IPv4 address in %s", (address, inner) => {
    expect(embeddedIpv4(address)).toBe(inner);
  });
});
