// The job queue hosts forward calls through, with several hosts starting at one moment: each
// creates its queue (DDL on pg-boss's shared tables) while the others do, as a cluster's
// machines do after a power cut.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createJobs, type Jobs } from "./jobs.ts";

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
