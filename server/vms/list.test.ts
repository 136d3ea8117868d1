// vm.list for a team: filters, sorts, keyset pages that hold every VM once while VMs are made.
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { VM_SORT_KEYS, type VmListInput } from "../api/schemas.ts";

let t: TestHangar;
let admin: Awaited<ReturnType<typeof callerFor>>;
let operator: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;
let otherImageId: string;
let operatorId: string;
const SEEDED = 90;

beforeAll(async () => {
  const fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  await t.hangar.pools.close();
  admin = await callerFor(t.hangar, "admin");
  operator = await callerFor(t.hangar, "operator");
  operatorId = (await t.hangar.db.user.findUniqueOrThrow({ where: { email: "operator@test.hangar" } })).id;
  const adminId = (await t.hangar.db.user.findUniqueOrThrow({ where: { email: "admin@test.hangar" } })).id;
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
  otherImageId = (await t.hangar.db.image.create({ data: { name: "other", path: "/o.qcow2" } })).id;
  const hostId = await t.hangar.lifecycle.hostId();
  const states = ["Stopped", "Running", "Suspended"] as const;
  // Several rows share a createdAt: the id breaks the tie, so pages still never overlap.
  const base = Date.parse("2026-01-01T00:00:00Z");
  await t.hangar.db.vm.createMany({
    data: Array.from({ length: SEEDED }, (_, i) => ({
      name: `seed-${String((i * 37) % SEEDED).padStart(3, "0")}`,
      imageId: i % 5 === 0 ? otherImageId : imageId,
      cpus: 1,
      memoryMiB: 128,
      userData: "#cloud-config\n",
      state: states[i % 3] ?? "Stopped",
      ownerId: i % 4 === 0 ? operatorId : i % 4 === 1 ? adminId : null,
      hostId: i % 6 === 0 ? null : hostId,
      createdAt: new Date(base + Math.floor(i / 3) * 1000),
      tags: i % 7 === 0 ? "ci web" : i % 7 === 1 ? "web" : "",
    })),
  });
});
afterAll(() => t.cleanup());

type Query = NonNullable<VmListInput>;

/** Every page of `query`, following nextCursor; the ids in order. */
async function allPages(query: Partial<Query>, between: () => Promise<void> = async () => undefined) {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await admin.vm.list({ ...query, cursor });
    ids.push(...page.items.map((row) => row.id));
    cursor = page.nextCursor ?? undefined;
    pages += 1;
    await between();
  } while (cursor && pages < 1000);
  return ids;
}

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCError)) throw new Error(`expected a TRPCError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

describe("vm.list", () => {
  it("returns every VM in one page without input, oldest first, without user-data", async () => {
    const page = await admin.vm.list();
    expect(page.total).toBe(SEEDED);
    expect(page.items).toHaveLength(SEEDED);
    expect(page.nextCursor).toBeNull();
    expect(page.items.every((row) => !("userData" in row))).toBe(true);
    const created = page.items.map((row) => row.createdAt.getTime());
    expect(created).toEqual([...created].sort((a, b) => a - b));
  });

  it.each(VM_SORT_KEYS.flatMap((sort) => (["asc", "desc"] as const).map((order) => [sort, order] as const)))(
    "pages sorted by %s %s hold each VM once, in order",
    async (sort, order) => {
      const whole = (await admin.vm.list({ sort, order, limit: 1000 })).items.map((row) => row.id);
      expect(await allPages({ sort, order, limit: 7 })).toEqual(whole);
      expect(new Set(whole).size).toBe(SEEDED);
    },
  );

  it("sorts by name, owner and host as a person reads them, with no owner or host last", async () => {
    const names = (await admin.vm.list({ sort: "name", limit: 1000 })).items.map((row) => row.name);
    expect(names).toEqual([...names].sort());
    const owners = (await admin.vm.list({ sort: "owner", limit: 1000 })).items.map((row) => row.owner?.email ?? null);
    expect(owners.indexOf(null)).toBe(owners.filter((o) => o !== null).length);
    expect(owners.filter((o) => o !== null)).toEqual(owners.filter((o) => o !== null).sort());
    const hosts = (await admin.vm.list({ sort: "host", order: "desc", limit: 1000 })).items.map((row) => row.host?.name ?? null);
    expect(hosts.slice(0, hosts.indexOf(null))).toEqual(hosts.filter((h) => h !== null));
  });

  it("narrows by name, state, owner (mine), host, image, pool and tag, and counts the matches", async () => {
    const all = (await admin.vm.list()).items;
    const hostId = await t.hangar.lifecycle.hostId();
    const cases: [Partial<Query>, (row: (typeof all)[number]) => boolean][] = [
      [{ search: "SEED-01" }, (row) => row.name.includes("seed-01")],
      [{ state: "Running" }, (row) => row.state === "Running"],
      [{ state: ["Running", "Suspended"] }, (row) => row.state === "Running" || row.state === "Suspended"],
      [{ owner: operatorId }, (row) => row.ownerId === operatorId],
      [{ hostId }, (row) => row.hostId === hostId],
      [{ imageId: otherImageId, state: "Stopped" }, (row) => row.imageId === otherImageId && row.state === "Stopped"],
      [{ tag: "WEB" }, (row) => row.tags.includes("web")],
      [{ tag: "ci", state: "Running" }, (row) => row.tags.includes("ci") && row.state === "Running"],
    ];
    for (const [query, keep] of cases) {
      const expected = all
        .filter(keep)
        .map((row) => row.id)
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      const page = await admin.vm.list({ ...query, limit: 5 });
      expect(page.total).toBe(expected.length);
      expect((await allPages({ ...query, limit: 5 })).sort()).toEqual(expected);
    }
    const mine = await operator.vm.list({ owner: "mine", limit: 1000 });
    expect(mine.items.map((row) => row.id).sort()).toEqual(
      all
        .filter((row) => row.ownerId === operatorId)
        .map((row) => row.id)
        .sort(),
    );
    expect((await admin.vm.list({ poolId: "nopool" })).total).toBe(0);
    expect((await admin.vm.list({ tag: "we" })).total).toBe(0);
  });

  it("returns every VM exactly once across pages while VMs are being created", async () => {
    const before = new Set((await admin.vm.list()).items.map((row) => row.id));
    let made = 0;
    // New VMs land after the cursor (created asc), before it (created desc), and anywhere (name,
    // owner, state: a VM being made moves from Initial through Cloning to Stopped meanwhile).
    const orders = [
      ["created", "asc"],
      ["created", "desc"],
      ["name", "asc"],
      ["owner", "desc"],
      ["state", "asc"],
      ["state", "desc"],
    ] as const;
    for (const [sort, order] of orders) {
      // A VM is being made while each next page is read.
      const creating: Promise<unknown>[] = [];
      const seen = await allPages({ sort, order, limit: 25 }, async () => {
        made += 1;
        creating.push(admin.vm.create({ name: `during-${made}`, imageId, cpus: 1, memoryMiB: 128 }));
      });
      await Promise.all(creating);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.filter((vmId) => before.has(vmId)).sort()).toEqual([...before].sort());
      for (const vmId of seen) before.add(vmId);
    }
    expect(made).toBeGreaterThan(0);
  }, 600_000);

  it("returns a VM once under a sort by state while it is made (Initial, Cloning, then Stopped)", async () => {
    for (const order of ["asc", "desc"] as const) {
      const hostId = await t.hangar.lifecycle.hostId();
      const vm = await t.hangar.db.vm.create({ data: { name: `making-${order}`, imageId, cpus: 1, memoryMiB: 128, state: "Initial", hostId } });
      const made = async (state: "Cloning" | "Stopped") => {
        await t.hangar.db.vm.update({ where: { id: vm.id }, data: { state } });
        await t.hangar.bus.publish({ vmId: vm.id, vmName: vm.name, state, eventId: "" });
      };
      const steps = [() => made("Cloning"), () => made("Stopped")];
      const seen = await allPages({ sort: "state", order, limit: 7 }, async () => void (await steps.shift()?.()));
      expect(seen.filter((id) => id === vm.id)).toEqual([vm.id]);
    }
  });

  it("refuses a cursor it did not make, or one of another sort, with a sentence", async () => {
    expect(await refusal(admin.vm.list({ cursor: "bm90LWEtY3Vyc29y" }))).toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/not a cursor vm.list returned/),
    });
    const first = await admin.vm.list({ sort: "name", limit: 2 });
    expect(await refusal(admin.vm.list({ sort: "created", cursor: first.nextCursor ?? "" }))).toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/sorted by name asc/),
    });
    expect(await refusal(admin.vm.list({ limit: 5000 }))).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/at most 1000/) });
    expect(await refusal(admin.vm.list({ state: "Sleeping" as never }))).toMatchObject({ code: "BAD_REQUEST" });
  });
});
