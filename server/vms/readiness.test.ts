// The ready condition: cloud-init's status parsed (table), and its watch, vm.wait and exec
// against the fake driver (the real guest is in guest-user.test.ts).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CLOUD_INIT_DONE, FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { READY_PROBE, parseReadiness, type Readiness } from "./readiness.ts";

describe("parseReadiness", () => {
  const cases: [string, string, Readiness][] = [
    ["JSON done", '{"status": "done", "errors": [], "detail": "DataSourceNoCloud [seed=/dev/vdb]"}', { state: "ready", detail: "cloud-init done" }],
    ["JSON running", '{"status": "running", "errors": []}', { state: "booting", detail: "cloud-init running" }],
    ["JSON not started", '{"status": "not started"}', { state: "booting", detail: "cloud-init not started" }],
    [
      "JSON error naming the module",
      '{"status": "error", "errors": ["(\'scripts_user\', RuntimeError(\'Runparts: 1 failures in 1 attempted commands\'))"]}',
      { state: "error", detail: "cloud-init failed in module scripts_user: ('scripts_user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))" },
    ],
    [
      "JSON error without a module",
      '{"status": "error", "errors": ["something broke"]}',
      { state: "error", detail: "cloud-init failed with an error: something broke" },
    ],
    [
      "JSON degraded done (23.4+)",
      '{"status": "done", "extended_status": "degraded done", "errors": [], "recoverable_errors": {"WARNING": ["x"]}}',
      { state: "ready", detail: "cloud-init done with warnings (degraded done)" },
    ],
    ["JSON disabled", '{"status": "disabled"}', { state: "ready", detail: "cloud-init is disabled: ready once SSH logs in" }],
    [
      "--long text done",
      "status: done\ntime: Tue, 01 Dec 2026 11:00:00 +0000\ndetail:\nDataSourceNoCloud [seed=/dev/vdb][dsmode=net]\n",
      { state: "ready", detail: "cloud-init done" },
    ],
    ["--long text running", "status: running\ntime: Tue, 01 Dec 2026 11:00:00 +0000\n", { state: "booting", detail: "cloud-init running" }],
    [
      "--long text error",
      "status: error\ntime: Tue, 01 Dec 2026\ndetail:\nDataSourceNoCloud\nerrors:\n\t- ('package_update_upgrade_install', Exception('failed'))\n",
      { state: "error", detail: "cloud-init failed in module package_update_upgrade_install: ('package_update_upgrade_install', Exception('failed'))" },
    ],
    ["no cloud-init", "no cloud-init\n", { state: "ready", detail: "no cloud-init: ready once SSH logs in" }],
    ["garbage", "Segmentation fault\n", { state: "booting", detail: "cloud-init status gave no status" }],
    ["broken JSON", '{"status": ', { state: "booting", detail: "cloud-init status gave unreadable JSON" }],
    ["JSON without status", '{"errors": []}', { state: "booting", detail: "cloud-init status gave no status" }],
  ];
  it.each(cases)("%s", (_name, stdout, expected) => {
    expect(parseReadiness(stdout)).toEqual(expected);
  });
});

describe("the ready condition of a VM (fake driver)", () => {
  let t: TestHangar;
  let fake: FakeDriver;
  let api: Awaited<ReturnType<typeof callerFor>>;
  let imageId: string;

  beforeAll(async () => {
    fake = new FakeDriver();
    t = await createTestHangar({ driverFor: fake.managerFor });
    api = await callerFor(t.hangar);
    imageId = (await t.hangar.db.image.create({ data: { name: "fake", path: "/x.qcow2", loginUser: "debian" } })).id;
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const newVm = async (name: string, cloudInitStatus = '{"status": "running"}') => {
    const vm = await api.vm.create({ name, imageId, cpus: 1, memoryMiB: 128 });
    fake.vm(vm.id).cloudInitStatus = cloudInitStatus;
    return vm;
  };

  it("is booting after a start and settles once cloud-init is done, probed as the image's login user", async () => {
    const vm = await newVm("settles");
    expect(await api.vm.start({ id: vm.id })).toMatchObject({ readyState: "booting", readyAt: null });
    fake.vm(vm.id).cloudInitStatus = CLOUD_INIT_DONE;
    expect(await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 30 })).toMatchObject({
      readyState: "ready",
      readyDetail: "cloud-init done",
      readyAt: expect.any(Date),
    });
    const probes = fake.vm(vm.id).shells.filter((s) => s.command.join(" ") === READY_PROBE.join(" "));
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((s) => s.options.user === "debian")).toBe(true);
    const events = (await api.vm.events({ vmId: vm.id, limit: 5 })).events;
    expect(events[0]).toMatchObject({ action: "ready", ok: true, fromState: "Running", toState: "Running", message: "Ready: cloud-init done" });
  });

  it("is cleared on stop, starts over on a fresh boot, and is kept across suspend and resume", async () => {
    const vm = await newVm("cycles", CLOUD_INIT_DONE);
    await api.vm.start({ id: vm.id });
    await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 30 });
    await api.vm.suspend({ id: vm.id });
    fake.vm(vm.id).cloudInitStatus = '{"status": "running"}';
    // A resumed guest carries on the boot it was ready in.
    expect(await api.vm.start({ id: vm.id })).toMatchObject({ readyState: "ready", readyDetail: "cloud-init done" });
    expect(await api.vm.stop({ id: vm.id, timeoutSec: 0 })).toMatchObject({ readyState: null, readyAt: null, readyDetail: null });
    expect(await api.vm.start({ id: vm.id })).toMatchObject({ readyState: "booting" });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("times out with a sentence saying what the guest is doing", async () => {
    const vm = await newVm("slow");
    await api.vm.start({ id: vm.id });
    const error = await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 1 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TIMEOUT", message: 'VM "slow" was not ready within 1 s (cloud-init running); wait longer or look at its console.' });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("fails a wait with PRECONDITION_FAILED when the VM stops meanwhile, or was not running", async () => {
    const vm = await newVm("stops");
    await api.vm.start({ id: vm.id });
    // The stop comes once the wait has read the VM Running (a stop before that is "not running").
    const findUnique = t.hangar.db.vm.findUnique.bind(t.hangar.db.vm);
    let readByWait: Promise<unknown> | undefined;
    const reads = vi.spyOn(t.hangar.db.vm, "findUnique").mockImplementation((args) => {
      const read = findUnique(args);
      if (!readByWait && new Error().stack?.includes("waitForReady")) readByWait = read;
      return read;
    });
    const waiting = api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 30 }).catch((e: unknown) => e);
    await expect.poll(() => readByWait).toBeDefined();
    expect(await readByWait).toMatchObject({ state: "Running" });
    reads.mockRestore();
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    expect(await waiting).toMatchObject({
      code: "PRECONDITION_FAILED",
      message: expect.stringMatching(/^VM "stops" stopped \(it is Stopp(ing|ed)\) while Hangar waited for it to be ready\.$/),
    });
    await expect(api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 1 })).rejects.toMatchObject({
      code: "PRECONDITION_FAILED",
      message: 'VM "stops" is Stopped; start it first.',
    });
    await expect(api.vm.wait({ id: "nosuchvm", for: "ready", timeoutSec: 1 })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(api.vm.wait({ id: vm.id, for: "Running", timeoutSec: 1 })).rejects.toMatchObject({ code: "TIMEOUT" });
  });

  it("records cloud-init's failure and the module, and vm.wait returns it", async () => {
    const vm = await newVm("broken", '{"status": "error", "errors": ["(\'scripts_user\', RuntimeError(\'Runparts: 1 failures\'))"]}');
    await api.vm.start({ id: vm.id });
    expect(await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 30 })).toMatchObject({
      readyState: "error",
      readyDetail: expect.stringMatching(/^cloud-init failed in module scripts_user/),
    });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("makes exec wait for readiness within its timeout, run as the login user, and as root on request", async () => {
    const vm = await newVm("execs");
    await api.vm.start({ id: vm.id });
    await expect(api.vm.exec({ id: vm.id, command: ["true"], timeoutSec: 1 })).rejects.toMatchObject({
      code: "TIMEOUT",
      message: expect.stringMatching(/^VM "execs" was not ready within 1 s/),
    });
    const exec = api.vm.exec({ id: vm.id, command: ["whoami"], timeoutSec: 30, asRoot: true });
    fake.vm(vm.id).cloudInitStatus = CLOUD_INIT_DONE;
    expect((await exec).stdout).toBe("whoami");
    expect(fake.vm(vm.id).shells.at(-1)?.options).toMatchObject({ user: "debian", asRoot: true });
    await api.vm.exec({ id: vm.id, command: ["id"] });
    expect(fake.vm(vm.id).shells.at(-1)?.options).toMatchObject({ user: "debian", asRoot: false });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });

  it("counts an image without cloud-init as ready once SSH logs in", async () => {
    const vm = await newVm("plain", "no cloud-init\n");
    await api.vm.start({ id: vm.id });
    expect(await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 30 })).toMatchObject({
      readyState: "ready",
      readyDetail: "no cloud-init: ready once SSH logs in",
    });
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });
});
