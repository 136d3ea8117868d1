/** What tests take from the machine: free ports for the servers they start, and the processes they leave. */
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}

/**
 * Ends (SIGKILL) the processes whose command line names a file under `root`: the qemu of VMs
 * a test's Hangar left running (a Hangar keeps its VMs running when it stops, by design).
 */
export function killLeftovers(root: string): void {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.includes(`${root}/`)) {
      try {
        process.kill(Number(entry), "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
  }
}
