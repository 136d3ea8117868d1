// Live changes between processes through LISTEN/NOTIFY: two fan-outs on one PostgreSQL
// database stand for two hosts (each has its own bus and connections, as a process would).
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { VmBus, type VmChange } from "./bus.ts";
import { CHANGES_CHANNEL, startFanout, type Fanout } from "./fanout.ts";

let t: TestHangar;
/** Beta: another process's bus, fed only through the database. */
const betaBus = new VmBus();
let alpha: Fanout;
let beta: Fanout;

beforeAll(async () => {
  t = await createTestHangar({ driverFor: new FakeDriver().managerFor });
  alpha = startFanout({ databaseUrl: t.env.databaseUrl, db: t.hangar.db, bus: t.hangar.bus });
  beta = startFanout({ databaseUrl: t.env.databaseUrl, db: t.hangar.db, bus: betaBus, retryMs: 3000 });
  await Promise.all([alpha.listening(), beta.listening()]);
});
afterAll(async () => {
  await alpha.stop();
  await beta.stop();
  await t.cleanup();
});

function collect(bus: VmBus, vmId?: string) {
  const changes: VmChange[] = [];
  const stop = bus.subscribe((change) => {
    if (!vmId || change.vmId === vmId) changes.push(change);
  });
  const until = async (count: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (changes.length < count && Date.now() < deadline) await sleep(20);
    return changes;
  };
  return { changes, stop, until };
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: t.env.databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe("changes fan out to every process", () => {
  it("delivers another process's changes in order, once, and never echoes a process its own", async () => {
    const onBeta = collect(betaBus);
    const onAlpha = collect(t.hangar.bus);
    const image = await tinyImage(t.hangar);
    const vm = await (await callerFor(t.hangar)).vm.create({ name: "fan", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const expected = ["Initial", "Cloning", "Stopped"];
    await onBeta.until(expected.length);
    await sleep(300);
    expect(onBeta.changes.map((c) => [c.vmId, c.vmName, c.state])).toEqual(expected.map((state) => [vm.id, "fan", state]));
    expect(onAlpha.changes.map((c) => c.state)).toEqual(expected);
    // The recorded states carry their event ids across: a tab resumes from them.
    const events = await t.hangar.db.event.findMany({ where: { vmId: vm.id, toState: { not: null } }, orderBy: { createdAt: "asc" } });
    expect(onBeta.changes.filter((c) => c.eventId).map((c) => c.eventId)).toEqual(events.map((e) => e.id));
    onBeta.stop();
    onAlpha.stop();
  });

  it("ignores notifications that are not well-formed changes", async () => {
    const onBeta = collect(betaBus);
    await withClient(async (client) => {
      for (const payload of ["not json", "{}", JSON.stringify({ from: "x", vmId: "v", vmName: "n", state: "Exploded", eventId: "" })]) {
        await client.query("SELECT pg_notify($1, $2)", [CHANGES_CHANNEL, payload]);
      }
      await client.query("SELECT pg_notify($1, $2)", [CHANGES_CHANNEL, JSON.stringify({ from: "x", vmId: "v", vmName: "n", state: "Running", eventId: "" })]);
    });
    const changes = await onBeta.until(1);
    await sleep(200);
    expect(changes).toEqual([{ vmId: "v", vmName: "n", state: "Running", eventId: "" }]);
    onBeta.stop();
  });

  it("listens again after its connection drops, and delivers the states recorded meanwhile", async () => {
    const vm = await t.hangar.db.vm.findFirstOrThrow({ where: { name: "fan" } });
    const onBeta = collect(betaBus, vm.id);
    // Beta's LISTEN connection is cut (a database restart, a network blip)…
    const cut = await withClient(async (client) => {
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()",
        [`LISTEN ${CHANGES_CHANNEL}`],
      );
      return Number(rows[0]?.n);
    });
    // …both listeners were cut (alpha's too); while they are away, alpha records a change.
    expect(cut).toBe(2);
    await (await callerFor(t.hangar)).vm.start({ id: vm.id });
    const changes = await onBeta.until(1, 15_000);
    await sleep(500);
    // Running, then the guest's "ready" (Running -> Running), each once and in order. The
    // Starting between has no recorded event, so a reconnect cannot bring it back; beta hears
    // it only when a loaded machine let it listen again before the start began.
    const recorded = await t.hangar.db.event.findMany({ where: { vmId: vm.id, toState: "Running" }, orderBy: { createdAt: "asc" } });
    expect(recorded.length).toBeGreaterThan(0);
    expect(changes.filter((c) => c.eventId).map((c) => [c.state, c.eventId])).toEqual(recorded.map((event) => ["Running", event.id]));
    expect(changes.filter((c) => !c.eventId).map((c) => c.state)).toEqual(changes.length > recorded.length ? ["Starting"] : []);
    // And it hears live changes again.
    const live = collect(betaBus, vm.id);
    await (await callerFor(t.hangar)).vm.stop({ id: vm.id, timeoutSec: 1 });
    expect((await live.until(2)).map((c) => c.state)).toEqual(["Stopping", "Stopped"]);
    live.stop();
    onBeta.stop();
  });
});
