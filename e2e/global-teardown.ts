/** Removes this run's state directory (failures keep their serial logs as attachments). */
import { rmSync } from "node:fs";

export default function globalTeardown(): void {
  const dir = process.env.HANGAR_E2E_STATE_DIR;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
