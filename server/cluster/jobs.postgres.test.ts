// The job queue hosts forward calls through, with several hosts starting at one moment: each
// creates its queue (DDL on pg-boss's shared tables) while the others do, as a cluster's
// machines do after a power cut.
import { setTimeout as sleep } from "node:timers/promises";
import PgBoss from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { HangarError } from "../errors.ts";
import { createJobs, queueOf, type Jobs } from "./jobs.ts";

let t: TestHangar;
const hosts: { id: string; name: string; jobs: Jobs }[] = [];

beforeAll(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
});
afterAll(async () => {
  await Promise.all(hosts.map((host) => host.jobs.close()));
  await t.cleanup();
});

describe("hosts starting together", () => {
  it("all serve their queues, and each answers a call from another", async () => {
    const log: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const id = `host-${i}-${Date.now()}`;
      hosts.push({ id, name: `h${i}`, jobs: createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: (line) => log.push(line) }) });
    }
    await Promise.all(hosts.map((host) => host.jobs.serve(host.id, async (data) => ({ servedBy: host.name, data }))));

    const answers = await Promise.all(
      hosts.map((host, i) => {
        const caller = hosts[(i + 1) % hosts.length];
        if (!caller) throw new Error("no caller");
        return caller.jobs.call(host, { n: i }, 20_000, "a test call");
      }),
    );
    expect(answers).toEqual(hosts.map((host, i) => ({ servedBy: host.name, data: { n: i } })));
    expect(log.filter((line) => line.includes("deadlock"))).toEqual([]);
  });
});

describe("a host that does not answer", () => {
  /** A host that made its queue, then stopped (as after kill -9): jobs wait there untaken. */
  async function silentHost(name: string) {
    const id = `${name}-${Date.now()}`;
    const jobs = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: () => undefined });
    await jobs.serve(id, async () => ({}));
    await jobs.close();
    return { id, name };
  }

  /** The host serving its queue again; what it runs goes into the returned list. */
  async function hostBack(host: { id: string; name: string }): Promise<unknown[]> {
    const ran: unknown[] = [];
    const back = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: () => undefined });
    hosts.push({ ...host, jobs: back });
    await back.serve(host.id, async (data) => {
      ran.push(data);
      return {};
    });
    return ran;
  }

  it("a job nobody takes is refused as not run, naming the host", async () => {
    const host = await silentHost("silent");
    const caller = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 1500, log: () => undefined });
    hosts.push({ ...host, jobs: caller });
    await expect(caller.call(host, {}, 20_000, "vm.stop")).rejects.toThrow(/^Host silent did not answer within 2 s, so vm\.stop was not run/);
  });

  it("an abandoned call fails with the reason at once, and its job never runs when the host returns", async () => {
    const host = await silentHost("gone");
    const caller = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: () => undefined });
    hosts.push({ ...host, jobs: caller });
    const gone = new AbortController();
    const call = caller.call(host, {}, 20_000, "vm.exec", gone.signal);
    setTimeout(() => gone.abort(new HangarError("HOST_OFFLINE", "Host gone went offline.")), 300);
    await expect(call).rejects.toMatchObject({ code: "HOST_OFFLINE", message: "Host gone went offline." });

    const ran = await hostBack(host);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(ran).toEqual([]);
  });

  it("a job taken after its pickup time is not run, even when its caller never cancelled it (the caller's host died)", async () => {
    const host = await silentHost("late");
    const caller = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 1000, log: () => undefined });
    const call = caller.call(host, { n: 1 }, 20_000, "vm.delete").catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The caller goes away with its job sent and untaken, before its pickup time ends.
    await caller.close();
    expect(await call).toMatchObject({ message: expect.stringMatching(/^Hangar is shutting down/) });

    await new Promise((resolve) => setTimeout(resolve, 1000));
    const ran = await hostBack(host);
    // Its worker took the job at once, and found it too late to run.
    const answered = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: () => undefined });
    hosts.push({ ...host, jobs: answered });
    expect(await answered.call(host, { n: 2 }, 20_000, "vm.get")).toEqual({});
    expect(ran).toEqual([{ n: 2 }]);
  });

  it("a call whose host restarted after a crash with it in hand fails as cut short once the host is back, not at the end of its budget", async () => {
    const host = await silentHost("crashed");
    const caller = createJobs({ databaseUrl: t.env.databaseUrl, pickupMs: 20_000, log: () => undefined });
    hosts.push({ ...host, jobs: caller });
    // A budget longer than the test: only the host's return can end the call in time.
    const call = caller.call(host, { n: 1 }, 3_600_000, "vm.stop").catch((error: unknown) => error);
    // The host's process takes the job, then dies with it in hand (kill -9): the job stays taken.
    const dying = new PgBoss({ connectionString: t.env.databaseUrl, schedule: false });
    await dying.start();
    let taken: unknown[] = [];
    while (taken.length === 0) {
      taken = await dying.fetch(queueOf(host.id));
      if (taken.length === 0) await sleep(50);
    }
    await dying.stop({ graceful: false, wait: true });

    // Back before it would show offline: its new process settles what the old one left.
    const ran = await hostBack(host);
    expect(await call).toMatchObject({
      code: "TIMEOUT",
      message: expect.stringMatching(/^Host crashed restarted while it ran vm\.stop, so it may have run in part/),
    });
    expect(ran).toEqual([]);
  });
});
