import { describe, expect, it } from "vitest";
import { parseUsernetForwards, refusedForward } from "./ports.ts";

describe("parseUsernetForwards", () => {
  it("reads the host-forward rows of info usernet", () => {
    const text = [
      "Hub -1 (net0):",
      "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
      "  TCP[HOST_FORWARD]  13       127.0.0.1 41263       10.0.2.15    22     0     0",
      "  TCP[HOST_FORWARD]  14       127.0.0.1  8080       10.0.2.15    80     0     0",
      "  TCP[ESTABLISHED]   20       10.0.2.15 55000       10.0.2.2   8000     0     0",
      "  UDP[236 sec]       17       10.0.2.15    68  255.255.255.255    67     0     0",
    ].join("\r\n");
    expect(parseUsernetForwards(text)).toEqual([
      { hostPort: 41263, guestPort: 22 },
      { hostPort: 8080, guestPort: 80 },
    ]);
  });
});

describe("refusedForward", () => {
  it("names the host and guest port of the rule qemu could not set up, from its own words", () => {
    // What qemu-system-x86_64 prints when another program holds the host port.
    const output =
      "qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:127.0.0.1:3401-:80: Could not set up host forwarding rule 'tcp:127.0.0.1:3401-:80'\n";
    expect(refusedForward(output)).toEqual({ hostPort: 3401, guestPort: 80 });
    expect(refusedForward("Could not set up host forwarding rule 'tcp:0.0.0.0:8080-10.0.2.15:8000'")).toEqual({ hostPort: 8080, guestPort: 8000 });
    expect(refusedForward("qemu-system-x86_64: -kernel /nope: No such file or directory")).toBeUndefined();
  });
});
