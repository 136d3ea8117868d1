/**
 * Ends the qemu of VMs a failed spec left behind, and removes this run's state directory
 * (failures keep their serial logs as attachments).
 */
import { rmSync } from "node:fs";
import { killLeftovers } from "../server/testing/processes.ts";

export default function globalTeardown(): void {
  const dir = process.env.HANGAR_E2E_STATE_DIR;
  if (!dir) return;
  killLeftovers(dir);
  rmSync(dir, { recursive: true, force: true });
}
