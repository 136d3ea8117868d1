import { describe, expect, it } from "vitest";
import { choosePlacement, memoryLimitMiB, noRoom, type HostLoad } from "./capacity.ts";

const host = (name: string, limit: number, allocated: number, extra: Partial<HostLoad> = {}): HostLoad => ({
  id: name,
  name,
  online: true,
  memoryLimitMiB: limit,
  allocatedMemoryMiB: allocated,
  hasImage: true,
  ...extra,
});

describe("capacity", () => {
  it("gives VMs the RAM times the overcommit ratio, less the reserve, never below zero", () => {
    expect(memoryLimitMiB(16384, 1, 1024)).toBe(15360);
    expect(memoryLimitMiB(16384, 1.5, 1024)).toBe(23552);
    expect(memoryLimitMiB(512, 1, 1024)).toBe(0);
  });

  it("says how much is left and what to do when a VM does not fit", () => {
    expect(noRoom(host("a", 1024, 512), 512)).toBeUndefined();
    expect(noRoom(host("a", 1024, 768), 512)).toBe(
      "Host a has 256 MiB of memory left for VMs (of 1024 MiB; 768 MiB taken by running VMs), not the 512 MiB this VM needs; stop or suspend a VM there, ask for less memory, or pick another host.",
    );
  });

  it("places on the live host with the most room, preferring hosts that hold the image", () => {
    const hosts = [host("alpha", 4096, 3000), host("beta", 4096, 1000), host("gamma", 8192, 0, { online: false })];
    expect(choosePlacement(hosts, 512)).toMatchObject({ host: { name: "beta" } });
    const fetching = [host("alpha", 4096, 3000), host("beta", 4096, 1000, { hasImage: false })];
    expect(choosePlacement(fetching, 512)).toMatchObject({ host: { name: "alpha" } });
    // Equal hosts: the same one every time.
    expect(choosePlacement([host("b", 2048, 0), host("a", 2048, 0)], 512)).toMatchObject({ host: { name: "a" } });
  });

  it("refuses with a sentence when no live host has room, or none is live", () => {
    expect(choosePlacement([host("alpha", 1024, 900), host("beta", 8192, 0, { online: false })], 512)).toEqual({
      refusal: "No online host has 512 MiB of memory left for a VM (the most any has is 124 MiB); stop or suspend VMs, ask for less memory, or add a host.",
    });
    expect(choosePlacement([host("alpha", 1024, 0, { online: false })], 512)).toEqual({ refusal: "No host is online; start Hangar on a host first." });
  });
});
