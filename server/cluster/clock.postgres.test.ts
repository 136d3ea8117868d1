// Hosts on machines whose clocks disagree. A heartbeat and a lease are times one host writes
// and the others compare: both are on the database's clock, so a host whose machine runs a
// minute behind is online to the others while it beats, and a process on a machine a minute
// ahead does not take a host name whose lease still runs.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createHosts, HostNameTakenError, postgresNow } from "../hosts.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;

beforeEach(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
});
afterEach(async () => {
  vi.useRealTimers();
  await t.cleanup();
});

const hostNamed = (name: string) =>
  createHosts({
    db: t.hangar.db,
    name,
    apiAddress: "http://127.0.0.1:1",
    accelerator: () => "tcg",
    offlineAfterMs: 15_000,
    databaseNow: postgresNow(t.hangar.db),
  });

/** Runs `work` as on a machine whose clock is `offsetMs` off (only Date is faked: timers run). */
async function onClockOff<T>(offsetMs: number, work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + offsetMs });
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}

describe("machines whose clocks disagree", () => {
  it("see a host that beats as online, whichever of them runs behind or ahead", async () => {
    const behind = hostNamed("behind");
    await onClockOff(-60_000, async () => {
      await behind.claim();
      await behind.beat();
    });
    const ahead = hostNamed("ahead");
    await onClockOff(60_000, () => ahead.claim());

    const seen = async () => (await ahead.list()).find((host) => host.name === "behind")?.online;
    expect(await onClockOff(60_000, seen)).toBe(true);
    const onTime = hostNamed("on-time");
    await onTime.claim();
    expect((await onTime.list()).map((host) => [host.name, host.online])).toEqual([
      ["ahead", true],
      ["behind", true],
      ["on-time", true],
    ]);
  });

  it("keep a host name whose lease runs from a second process on a machine ahead", async () => {
    await hostNamed("twin").claim();
    const second = hostNamed("twin");
    const error = await onClockOff(60_000, () => second.claim()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostNameTakenError);
  });
});
