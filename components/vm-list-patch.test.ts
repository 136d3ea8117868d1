import { describe, expect, it } from "vitest";
import type { VmRow } from "./trpc.ts";
import { firstVmListQuery } from "../lib/vocabulary.ts";
import { DEFAULT_SORT, defaultFilter, listQuery, matchesQuery, queryOfKey } from "./vm-filter.ts";
import { patchPages, type RowChange, type VmListPage } from "./vm-list-patch.ts";

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

/** Created in the order of their ids: a before b before c… */
const made = (id: string) => ({ createdAt: new Date(id.charCodeAt(0) * 1000) });
const vm = (id: string, change: Partial<VmRow> = {}) => row(id, { ...made(id), ...change });
/** The table's default order: newest first. */
const NEWEST = { sort: "created", order: "desc" } as const;
const BY_NAME = { sort: "name", order: "asc" } as const;
const change = (vmId: string, next: VmRow | null, extra: Partial<RowChange> = {}): RowChange => ({ vmId, row: next, before: null, created: false, ...extra });

describe("patchPages", () => {
  const pages = [page([vm("d"), vm("c")], "c1", 4), page([vm("b"), vm("a")], null, 4)];

  it("replaces a changed row where it is, leaving the other pages as they were", () => {
    const next = patchPages(pages, change("b", vm("b", { state: "Running" })), NEWEST, ME);
    expect(ids(next)).toEqual([
      ["d", "c"],
      ["b", "a"],
    ]);
    expect(next[1]?.items[0]?.state).toBe("Running");
    expect(next[0]).toBe(pages[0]);
    expect(next.map((p) => p.total)).toEqual([4, 4]);
  });

  it("drops a row whose tags no longer include the list's tag, and adds one tagged since", () => {
    const query = { ...NEWEST, tag: "web" };
    const pages = [page([vm("b", { tags: ["web"] }), vm("a", { tags: ["web", "db"] })], null)];
    const untagged = patchPages(pages, change("a", vm("a", { tags: ["db"] })), query, ME);
    expect(ids(untagged)).toEqual([["b"]]);
    expect(untagged[0]?.total).toBe(1);
    const tagged = patchPages(untagged, change("c", vm("c", { tags: ["web"] })), query, ME);
    expect(ids(tagged)).toEqual([["c", "b"]]);
    expect(tagged[0]?.total).toBe(2);
  });

  it("drops a row once it is gone or no longer matches the list's filters", () => {
    expect(ids(patchPages(pages, change("c", null), NEWEST, ME))).toEqual([["d"], ["b", "a"]]);
    const stopped = patchPages(pages, change("d", vm("d", { state: "Running" })), { ...NEWEST, state: "Stopped" }, ME);
    expect(ids(stopped)).toEqual([["c"], ["b", "a"]]);
    expect(stopped.map((p) => p.total)).toEqual([3, 3]);
  });

  it("puts a new VM where the list's order puts it, only if it matches", () => {
    const mine = patchPages(pages, change("n", vm("n"), { created: true }), { ...NEWEST, owner: "mine" }, ME);
    expect(ids(mine)).toEqual([
      ["n", "d", "c"],
      ["b", "a"],
    ]);
    expect(mine.map((p) => p.total)).toEqual([5, 5]);
    const theirs = vm("n", { ownerId: "someone-else" });
    expect(patchPages(pages, change("n", theirs, { created: true }), { ...NEWEST, owner: "mine" }, ME)).toBe(pages);
    expect(patchPages(pages, change("n", vm("n", { name: "other" }), { created: true }), { ...NEWEST, search: "vm-" }, ME)).toBe(pages);
  });

  it("puts a new VM in its place by name, and leaves one that sorts past the pages read to a later page", () => {
    const byName = [page([vm("a"), vm("c")], "c1", 10)];
    const placed = patchPages(byName, change("b", vm("b"), { created: true }), BY_NAME, ME);
    expect(ids(placed)).toEqual([["a", "b", "c"]]);
    expect(placed[0]?.total).toBe(11);
    const later = patchPages(byName, change("z", vm("z"), { created: true }), BY_NAME, ME);
    expect(ids(later)).toEqual([["a", "c"]]);
    expect(later[0]?.total).toBe(11);
  });

  it("moves a renamed VM to its new place by name, from a page not read yet too, without counting it twice", () => {
    const byName = [page([vm("a"), vm("c"), vm("e")], "c1", 10), page([vm("g"), vm("i")], "c2", 10)];
    const moved = patchPages(byName, change("i", vm("i", { name: "vm-b" })), BY_NAME, ME);
    expect(ids(moved)).toEqual([["a", "i", "c", "e"], ["g"]]);
    expect(moved.map((p) => p.total)).toEqual([10, 10]);
    const fromLater = patchPages(byName, change("x", vm("x", { name: "vm-d" }), { before: vm("x", { name: "vm-x" }) }), BY_NAME, ME);
    expect(ids(fromLater)).toEqual([
      ["a", "c", "x", "e"],
      ["g", "i"],
    ]);
    expect(fromLater.map((p) => p.total)).toEqual([10, 10]);
    const away = patchPages(byName, change("a", vm("a", { name: "vm-zz" })), BY_NAME, ME);
    expect(ids(away)).toEqual([
      ["c", "e"],
      ["g", "i"],
    ]);
    expect(away.map((p) => p.total)).toEqual([10, 10]);
  });

  it("moves a started VM among the running ones when the list sorts by state", () => {
    const byState = [page([vm("r", { state: "Running" }), vm("a"), vm("b")], null, 3)];
    const started = patchPages(byState, change("b", vm("b", { state: "Running" })), { sort: "state", order: "asc" }, ME);
    expect(ids(started)).toEqual([["b", "r", "a"]]);
  });

  it("counts a VM that enters or leaves a filter on pages not read yet by the row it had before", () => {
    const partial = [page([vm("y"), vm("x")], "c1", 50)];
    const query = { ...NEWEST, state: "Stopped" } as const;
    const entered = patchPages(partial, change("z", vm("z"), { before: vm("z", { state: "Running" }) }), query, ME);
    expect(ids(entered)).toEqual([["z", "y", "x"]]);
    expect(entered[0]?.total).toBe(51);
    const left = patchPages(partial, change("a", vm("a", { state: "Running" }), { before: vm("a") }), query, ME);
    expect(ids(left)).toEqual([["y", "x"]]);
    expect(left[0]?.total).toBe(49);
    const deleted = patchPages(partial, change("a", null, { before: vm("a") }), query, ME);
    expect(deleted[0]?.total).toBe(49);
    // Not known how it was: placed where it goes now, the count as it was.
    const unknown = patchPages(partial, change("z", vm("z")), query, ME);
    expect(ids(unknown)).toEqual([["z", "y", "x"]]);
    expect(unknown[0]?.total).toBe(50);
  });

  it("adds a VM to a list whose pages are all read wherever it goes", () => {
    const complete = [page([vm("b")], null, 1)];
    const running = patchPages(complete, change("a", vm("a", { state: "Running" })), { ...NEWEST, state: "Running" }, ME);
    expect(ids(running)).toEqual([["b", "a"]]);
    expect(running[0]?.total).toBe(2);
  });

  it("appends to an unpaged list, which is oldest first", () => {
    const all = [page([vm("a")], null)];
    expect(ids(patchPages(all, change("n", vm("n"), { created: true }), {}, ME))).toEqual([["a", "n"]]);
  });
});

describe("the list's filters read back from a query key", () => {
  it("takes the input of a tRPC key and ignores its paging", () => {
    const key = [["vm", "list"], { input: { search: "web", state: "Running", sort: "name", order: "asc", limit: 100 }, type: "infinite" }];
    expect(queryOfKey(key)).toEqual({ search: "web", state: "Running", sort: "name", order: "asc" });
    expect(queryOfKey([["vm", "list"], { type: "query" }])).toEqual({});
    expect(queryOfKey([["vm", "list"], { input: { owner: 5 }, type: "query" }])).toBeUndefined();
    expect(queryOfKey([["vm", "list"], { input: { state: ["Running", "Paused"], owner: "mine", tag: "db" }, type: "infinite" }])).toEqual({
      state: ["Running", "Paused"],
      owner: "mine",
      tag: "db",
    });
    // Anything not as the table asks makes the key unreadable: such a list is not patched.
    for (const input of [{ state: ["Running", 1] }, { sort: "memory" }, { order: "up" }, { hostId: null }, "web"]) {
      expect(queryOfKey([["vm", "list"], { input, type: "query" }])).toBeUndefined();
    }
    expect(queryOfKey([["vm", "list"]])).toBeUndefined();
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

describe("the list a page's server seeds", () => {
  it.each(["admin", "operator", "viewer"])("is the one the table asks for first, as %s", (role) => {
    // Any difference is a different query key: the seeded rows would be ignored and the list asked for anyway.
    expect(firstVmListQuery(role)).toStrictEqual(listQuery(defaultFilter(role), DEFAULT_SORT));
  });
});
