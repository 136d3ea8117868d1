import { describe, expect, it } from "vitest";
import { parseUsernetForwards } from "./ports.ts";

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
