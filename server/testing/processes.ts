/** Processes a test run leaves behind. */
import { readdirSync, readFileSync } from "node:fs";

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
