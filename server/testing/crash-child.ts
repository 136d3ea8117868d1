/**
 * A Hangar server process for crash tests: builds the services on a state directory and
 * database and stops one VM, as vm.stop does. The test kills it with SIGKILL mid-stop.
 * Usage: node --import tsx server/testing/crash-child.ts STATE_DIR DATABASE_URL GUEST_DIR VM_ID
 */
import { envFor } from "../env.ts";
import { createHangar } from "../hangar.ts";

const [stateDir, databaseUrl, guestDir, vmId] = process.argv.slice(2);
if (!stateDir || !databaseUrl || !guestDir || !vmId) {
  console.error("usage: crash-child.ts STATE_DIR DATABASE_URL GUEST_DIR VM_ID");
  process.exit(2);
}
const hangar = createHangar({ env: envFor({ stateDir, databaseUrl, guestDir }, { NODE_ENV: "test" }) });
// Ten minutes for the guest: the test kills this process long before.
await hangar.lifecycle.stopVm(vmId, 600_000, "crash-child");
await hangar.db.$disconnect();
