// A change made while a page's first read is still under way reaches the page: the query is
// read again once that first read lands, where a plain invalidation would keep it stale.
import { QueryClient, QueryObserver } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { refreshQueries } from "./refresh-vm.ts";

function slowSource() {
  let version = 0;
  const reads: number[] = [];
  return {
    change: () => (version += 1),
    reads,
    read: async () => {
      const seen = version;
      await new Promise((resolve) => setTimeout(resolve, 30));
      reads.push(seen);
      return seen;
    },
  };
}

describe("refreshQueries", () => {
  it("reads again a query whose first read began before the change", async () => {
    const source = slowSource();
    const client = new QueryClient();
    const observer = new QueryObserver(client, { queryKey: ["vm", "events"], queryFn: source.read });
    const unsubscribe = observer.subscribe(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 5));
    source.change();
    await refreshQueries(client, { queryKey: ["vm"] });
    expect(client.getQueryData(["vm", "events"])).toBe(1);
    expect(source.reads).toEqual([0, 1]);
    unsubscribe();
  });

  it("where the page had its data already, one read is enough", async () => {
    const source = slowSource();
    const client = new QueryClient();
    const observer = new QueryObserver(client, { queryKey: ["vm", "get"], queryFn: source.read });
    const unsubscribe = observer.subscribe(() => undefined);
    await expect.poll(() => client.getQueryData(["vm", "get"])).toBe(0);
    source.change();
    await refreshQueries(client, { queryKey: ["vm"] });
    expect(client.getQueryData(["vm", "get"])).toBe(1);
    expect(source.reads).toEqual([0, 1]);
    unsubscribe();
  });
});
