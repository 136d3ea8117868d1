import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../testing/cluster.ts";

describe("three hosts on one database", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 600_000);
  afterAll(async () => {
    await cluster?.close();
  }, 120_000);

  it("every host registers and answers", async () => {
    const names = (await cluster.host("alpha").api.host.list.query()).map((h) => h.name);
    expect(names).toEqual(["alpha", "beta", "gamma"]);
  });
});
