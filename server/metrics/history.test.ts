// History: the ring keeps the last hour, finished minutes become averaged rows, rows older
// than a day are deleted, and "24h" reads the rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { averagePoints, createHistory, Ring } from "./history.ts";

let t: TestHangar;
beforeAll(async () => {
  t = await createTestHangar();
});
afterAll(() => t.cleanup());

describe("Ring", () => {
  it("keeps the newest `capacity` items, oldest first", () => {
    const ring = new Ring<number>(3);
    expect(ring.toArray()).toEqual([]);
    for (const n of [1, 2, 3, 4, 5]) ring.push(n);
    expect(ring.toArray()).toEqual([3, 4, 5]);
    expect(ring.last()).toBe(5);
  });
});

describe("averagePoints", () => {
  it("averages numbers over the points that have them, keeps the last of anything else", () => {
    const points = [
      { at: 1, cpu: 10, net: null, vms: { Running: 1 } },
      { at: 2, cpu: 30, net: null, vms: { Running: 2 } },
      { at: 3, cpu: null, net: null, vms: { Running: 3 } },
    ];
    expect(averagePoints(points, 0)).toEqual({ at: 0, cpu: 20, net: null, vms: { Running: 3 } });
  });
});

describe("history", () => {
  it("serves the last hour from memory and 24 hours from minute rows, pruned after a day", async () => {
    const minute = 60_000;
    const start = Math.floor(Date.now() / minute) * minute - 3 * minute;
    let clock = start;
    const history = createHistory({ db: t.hangar.db, intervalMs: 20_000, now: () => clock });
    // A row from two days ago, which the flush deletes.
    await t.hangar.db.metricPoint.create({ data: { kind: "vm", subjectId: "a", at: new Date(start - 48 * 60 * minute), data: "{}" } });

    for (let i = 0; i < 9; i++) {
      clock = start + i * 20_000;
      history.add("vm", "a", { at: clock, cpuPercent: i, rssBytes: 100 });
    }
    expect((await history.points("vm", "a", "1h")).map((p) => p.cpuPercent)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(history.latest("vm", "a")?.cpuPercent).toBe(8);

    await history.flush();
    const day = await history.points("vm", "a", "24h");
    // Minutes 0 (0,1,2) and 1 (3,4,5) are finished; minute 2 is still filling.
    expect(day).toEqual([
      { at: start, cpuPercent: 1, rssBytes: 100 },
      { at: start + minute, cpuPercent: 4, rssBytes: 100 },
    ]);
    expect(await t.hangar.db.metricPoint.count({ where: { subjectId: "a" } })).toBe(2);
    expect((await history.latestStored("vm", ["a"])).get("a")).toEqual({ at: start + minute, cpuPercent: 4, rssBytes: 100 });

    // An hour without points: memory forgets the subject after writing its last minute.
    clock = start + 65 * minute;
    await history.flush();
    expect(history.latest("vm", "a")).toBeUndefined();
    expect((await history.points("vm", "a", "24h")).at(-1)).toEqual({ at: start + 2 * minute, cpuPercent: 7, rssBytes: 100 });
  });

  it("writes the minute in progress at shutdown, and a restart's own average of it replaces that row", async () => {
    const minute = 60_000;
    const start = Math.floor(Date.now() / minute) * minute - 2 * minute;
    let clock = start;
    const before = createHistory({ db: t.hangar.db, intervalMs: 20_000, now: () => clock });
    for (const [i, cpuPercent] of [10, 20].entries()) {
      clock = start + i * 20_000;
      before.add("vm", "b", { at: clock, cpuPercent, rssBytes: 100 });
    }
    await before.flush({ unfinished: true });
    expect(await before.points("vm", "b", "24h")).toEqual([{ at: start, cpuPercent: 15, rssBytes: 100 }]);

    // The next process samples the rest of that minute: its average is the one kept.
    const after = createHistory({ db: t.hangar.db, intervalMs: 20_000, now: () => clock });
    clock = start + 40_000;
    after.add("vm", "b", { at: clock, cpuPercent: 30, rssBytes: 100 });
    clock = start + minute;
    after.add("vm", "b", { at: clock, cpuPercent: 50, rssBytes: 100 });
    await after.flush();
    expect(await after.points("vm", "b", "24h")).toEqual([{ at: start, cpuPercent: 30, rssBytes: 100 }]);
  });
});
