// A pool of the real tiny guest hands out a VM that is ready and answers SSH at once.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshOptions } from "../driver/qemu/manager.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;
const keys = mkdtempSync(path.join(os.tmpdir(), "hangar-pool-key-"));

beforeAll(async () => {
  t = await createTestHangar();
});
afterAll(async () => {
  await t.hangar.pools.close();
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
  rmSync(keys, { recursive: true, force: true });
});

describe("a pool of the tiny guest", () => {
  it("keeps two suspended VMs and hands one out, ready, that answers SSH as hangar with the returned key", async () => {
    const api = await callerFor(t.hangar);
    const image = await tinyImage(t.hangar);
    const pool = await api.pool.create({ name: "tiny", imageId: image.id, cpus: 1, memoryMiB: 256, size: 2, staging: "Suspended" });
    await t.hangar.pools.kick(pool.id);
    const [listed] = await api.pool.list();
    expect(listed?.vms.map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);

    const got = await api.pool.acquire({ poolId: pool.id, timeoutSec: 120 });
    const keyFile = path.join(keys, "id");
    writeFileSync(keyFile, got.privateKey ?? "", { mode: 0o600 });
    expect(got.user).toBe("hangar");
    const uname = await execa("ssh", [...sshOptions(got.sshPort, keyFile), "--", `${got.user}@${got.host}`, "uname -n; whoami"]);
    expect(uname.stdout.trim()).toBe(`${got.name}\nhangar`);
    // Handed out ready: cloud-init (here the tiny guest's stand-in) had finished.
    expect(await api.vm.get({ id: got.vmId })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
    expect(got.name.startsWith("tiny-")).toBe(true);

    await api.pool.release({ vmId: got.vmId });
    expect(await t.hangar.db.vm.findUnique({ where: { id: got.vmId } })).toBeNull();
    await t.hangar.pools.kick(pool.id);
    const [after] = await api.pool.list();
    expect(after?.vms.map((vm) => vm.state)).toEqual(["Suspended", "Suspended"]);
    expect(after?.vms.map((vm) => vm.id)).not.toContain(got.vmId);

    await api.pool.delete({ id: pool.id });
    expect(await t.hangar.db.vm.count()).toBe(0);
  });
});
