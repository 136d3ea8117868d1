import { describe, expect, it } from "vitest";
import type { VmRow } from "./trpc.ts";
import { matchesQuery, queryOfKey } from "./vm-filter.ts";
import { patchPages, type VmListPage } from "./vm-list-patch.ts";

const ME = "user-me";

function row(id: string, change: Partial<VmRow> = {}): VmRow {
  return {
    id,
    name: `vm-${id}`,
    state: "Stopped",
    imageId: "img1",
    cdromImageId: null,
    cpus: 1,
    memoryMiB: 256,
    autostart: false,
    autostartOrder: null,
    autostartDelaySec: 0,
    protection: false,
    sshPort: null,
    network: "nat",
    bridge: null,
    diskGiB: null,
    pid: null,
    error: null,
    cloneInfo: null,
    machine: null,
    readyState: null,
    readyAt: null,
    readyDetail: null,
    poolId: null,
    tags: [],
    acquiredAt: null,
    acquiredBy: null,
    ownerId: ME,
    hostId: "host1",
    createdAt: new Date(0),
    updatedAt: new Date(0),
    image: { id: "img1", name: "hangar-tiny" },
    ports: [],
    owner: { id: ME, email: "me@hangar.test" },
    host: { id: "host1", name: "h1" },
    actions: ["Start", "Delete"],
    hostOffline: false,
    usage: null,
    ...change,
  };
}

const page = (items: VmRow[], nextCursor: string | null, total = items.length): VmListPage => ({ items, nextCursor, total });
const ids = (pages: VmListPage[]) => pages.map((p) => p.items.map((r) => r.id));

describe("patchPages", () => {
  const pages = [page([row("a"), row("b")], "c1", 4), page([row("c"), row("d")], null, 4)];

  it("replaces a changed row where it is, leaving the other pages as they were", () => {
    const next = patchPages(pages, { vmId: "c", row: row("c", { state: "Running" }), created: false }, {}, ME, "start");
    expect(ids(next)).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
    expect(next[1]?.items[0]?.state).toBe("Running");
    expect(next[0]).toBe(pages[0]);
    expect(next.map((p) => p.total)).toEqual([4, 4]);
  });

  it("drops a row whose tags no longer include the list's tag, and adds one tagged since", () => {
    const query = { tag: "web" };
    const pages = [page([row("a", { tags: ["web"] }), row("b", { tags: ["web", "db"] })], null)];
    const untagged = patchPages(pages, { vmId: "b", row: row("b", { tags: ["db"] }), created: false }, query, ME, "start");
    expect(ids(untagged)).toEqual([["a"]]);
    expect(untagged[0]?.total).toBe(1);
    const tagged = patchPages(untagged, { vmId: "c", row: row("c", { tags: ["web"] }), created: false }, query, ME, "start");
    expect(ids(tagged)).toEqual([["c", "a"]]);
  });

  it("drops a row once it is gone or no longer matches the list's filters", () => {
    expect(ids(patchPages(pages, { vmId: "b", row: null, created: false }, {}, ME, "start"))).toEqual([["a"], ["c", "d"]]);
    const stopped = patchPages(pages, { vmId: "a", row: row("a", { state: "Running" }), created: false }, { state: "Stopped" }, ME, "start");
    expect(ids(stopped)).toEqual([["b"], ["c", "d"]]);
    expect(stopped.map((p) => p.total)).toEqual([3, 3]);
  });

  it("puts a new VM first only if it matches", () => {
    const mine = patchPages(pages, { vmId: "n", row: row("n"), created: true }, { owner: "mine" }, ME, "start");
    expect(ids(mine)).toEqual([
      ["n", "a", "b"],
      ["c", "d"],
    ]);
    expect(mine.map((p) => p.total)).toEqual([5, 5]);
    const theirs = row("n", { ownerId: "someone-else" });
    expect(patchPages(pages, { vmId: "n", row: theirs, created: true }, { owner: "mine" }, ME, "start")).toBe(pages);
    expect(patchPages(pages, { vmId: "n", row: row("n", { name: "other" }), created: true }, { search: "vm-" }, ME, "start")).toBe(pages);
  });

  it("does not add a known VM that may be on a page not read yet, but does once every page is read", () => {
    const partial = [page([row("a")], "c1", 3)];
    expect(patchPages(partial, { vmId: "z", row: row("z"), created: false }, {}, ME, "start")).toBe(partial);
    const complete = [page([row("a")], null, 1)];
    expect(ids(patchPages(complete, { vmId: "z", row: row("z", { state: "Running" }), created: false }, { state: "Running" }, ME, "start"))).toEqual([
      ["z", "a"],
    ]);
  });

  it("appends to an unpaged list, which is oldest first", () => {
    const all = [page([row("a")], null)];
    expect(ids(patchPages(all, { vmId: "n", row: row("n"), created: true }, {}, ME, "end"))).toEqual([["a", "n"]]);
  });
});

describe("the list's filters read back from a query key", () => {
  it("takes the input of a tRPC key and ignores its paging", () => {
    const key = [["vm", "list"], { input: { search: "web", state: "Running", sort: "name", order: "asc", limit: 100 }, type: "infinite" }];
    expect(queryOfKey(key)).toEqual({ search: "web", state: "Running" });
    expect(queryOfKey([["vm", "list"], { type: "query" }])).toEqual({});
    expect(queryOfKey([["vm", "list"], { input: { owner: 5 }, type: "query" }])).toBeUndefined();
  });

  it("matches as the server filters: name part, state list, mine, host, image, pool, tag", () => {
    const vm = row("a", { name: "web-1", state: "Running", poolId: "p1", tags: ["prod", "team-a"] });
    expect(
      matchesQuery(vm, { search: "WEB", state: ["Running", "Stopped"], owner: "mine", hostId: "host1", imageId: "img1", poolId: "p1", tag: "Team-A" }, ME),
    ).toBe(true);
    expect(matchesQuery(vm, { tag: "team" }, ME)).toBe(false);
    expect(matchesQuery(vm, { owner: "mine" }, "another-user")).toBe(false);
    expect(matchesQuery(vm, { owner: ME }, "another-user")).toBe(true);
    expect(matchesQuery(vm, { hostId: "host2" }, ME)).toBe(false);
    expect(matchesQuery(vm, { poolId: "p2" }, ME)).toBe(false);
  });
});
