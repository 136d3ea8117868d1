// Images across hosts: a host without an image's files fetches them from one that holds
// them, over the internal route, checked by sha256; the route answers only other hosts.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { rm, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CLUSTER_HEADER, clusterKey, issuePass } from "../auth/cluster-secret.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, tinyImage } from "../testing/fixtures.ts";
import { startPeers } from "../testing/peers.ts";
import { INTERNAL_TERMINAL_PATH } from "../terminal/proxy.ts";
import { INTERNAL_IMAGES_PATH, storeName } from "./copies.ts";

let cluster: Awaited<ReturnType<typeof startPeers>>;
const fake = new FakeDriver();

beforeAll(async () => {
  cluster = await startPeers(["alpha", "beta"], () => fake.managerFor);
});
afterAll(() => cluster.close());

const hostsHolding = async (imageId: string) => {
  const copies = await cluster.peer("alpha").hangar.db.imageCopy.findMany({ where: { imageId }, include: { host: true } });
  return copies.map((copy) => copy.host.name).sort();
};

describe("image copies between hosts", () => {
  it("records the host that imported an image, and fetches the files to another host that needs them", async () => {
    const alpha = cluster.peer("alpha").hangar;
    const beta = cluster.peer("beta").hangar;
    const image = await tinyImage(alpha);
    expect(await hostsHolding(image.id)).toEqual(["alpha"]);
    expect(image.storedSha256).toMatch(/^[0-9a-f]{64}$/);

    // Beta makes a VM on it: the disk, kernel and initrd come from alpha.
    const vm = await (await callerFor(beta)).vm.create({ name: "on-beta", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await beta.hosts.selfId() });
    expect(vm.state).toBe("Stopped");
    for (const file of [image.path, image.kernel, image.initrd]) {
      const name = storeName(file ?? "") ?? "";
      const local = path.join(beta.env.imagesDir, name);
      expect(readFileSync(local).equals(readFileSync(path.join(alpha.env.imagesDir, name)))).toBe(true);
      expect(statSync(local).mode & 0o777).toBe(0o444);
    }
    expect(await hostsHolding(image.id)).toEqual(["alpha", "beta"]);
    expect(readdirSync(beta.env.imagesDir).filter((name) => name.endsWith(".part"))).toEqual([]);
    // Starting it finds everything in beta's own store: the driver gets beta's paths only.
    await (await callerFor(beta)).vm.start({ id: vm.id });
    const started = fake.vm(vm.id).lastStart;
    expect(started?.boot?.kernel).toBe(path.join(beta.env.imagesDir, storeName(image.kernel ?? "") ?? ""));
    expect(started?.boot?.kernel?.startsWith(alpha.env.imagesDir)).toBe(false);
  });

  it("keeps nothing that does not match the recorded sha256, and says why the VM could not be made", async () => {
    const alpha = cluster.peer("alpha").hangar;
    const beta = cluster.peer("beta").hangar;
    const image = await tinyImage(alpha);
    const recorded = image.storedSha256;
    await alpha.db.image.update({ where: { id: image.id }, data: { storedSha256: "0".repeat(64) } });
    // Beta no longer holds the disk (as if it never had it): it must fetch it again.
    const betaDisk = path.join(beta.env.imagesDir, storeName(image.path) ?? "");
    await rm(betaDisk, { force: true });
    await beta.db.imageCopy.deleteMany({ where: { hostId: await beta.hosts.selfId() } });
    try {
      const refused = await (
        await callerFor(beta)
      ).vm
        .create({ name: "tampered", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await beta.hosts.selfId() })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toMatchObject({ code: "PRECONDITION_FAILED" });
      expect(String(refused)).toMatch(/no host holding it \(alpha\) could send it/);
      expect(String(refused)).not.toContain(alpha.env.imagesDir);
      expect(existsSync(betaDisk)).toBe(false);
      expect(readdirSync(beta.env.imagesDir).filter((file) => file.endsWith(".part"))).toEqual([]);
    } finally {
      await alpha.db.image.update({ where: { id: image.id }, data: { storedSha256: recorded } });
    }
  });
});

describe("the internal routes", () => {
  it("sweeps the store files no image names (an image deleted on another host), once nothing has written them for a while", async () => {
    const beta = cluster.peer("beta").hangar;
    const image = await tinyImage(beta);
    const named = path.join(beta.env.imagesDir, storeName(image.path) ?? "");
    const stale = path.join(beta.env.imagesDir, `${"ab".repeat(32)}.qcow2`);
    const fresh = path.join(beta.env.imagesDir, `${"cd".repeat(32)}.qcow2`);
    const other = path.join(beta.env.imagesDir, "notes.txt");
    const hourAgo = new Date(Date.now() - 60 * 60_000);
    for (const file of [stale, fresh, other]) await writeFile(file, "x");
    for (const file of [stale, other, named]) await utimes(file, hourAgo, hourAgo);
    expect(await beta.copies.sweep()).toBe(1);
    expect([existsSync(named), existsSync(stale), existsSync(fresh), existsSync(other)]).toEqual([true, false, true, true]);
    await rm(fresh);
    await rm(other);
  });

  it("send a store file only for a pass signed with the cluster key, naming that file", async () => {
    const alpha = cluster.peer("alpha");
    const image = await tinyImage(alpha.hangar);
    const name = storeName(image.kernel ?? "") ?? "";
    const url = `${alpha.url}${INTERNAL_IMAGES_PATH}${name}`;
    const get = (pass?: string) => fetch(url, { headers: pass ? { [CLUSTER_HEADER]: pass } : {} });

    const good = await get(issuePass(alpha.hangar.clusterKey, `image:${name}`));
    expect(good.status).toBe(200);
    expect(Buffer.from(await good.arrayBuffer()).equals(readFileSync(path.join(alpha.hangar.env.imagesDir, name)))).toBe(true);

    expect((await get()).status).toBe(403);
    expect((await get(issuePass(alpha.hangar.clusterKey, "image:another"))).status).toBe(403);
    expect((await get(issuePass(clusterKey("another cluster's secret of 32+ chars"), `image:${name}`))).status).toBe(403);
    const absent = `${"f".repeat(64)}.qcow2`;
    expect(
      (await fetch(`${alpha.url}${INTERNAL_IMAGES_PATH}${absent}`, { headers: { [CLUSTER_HEADER]: issuePass(alpha.hangar.clusterKey, `image:${absent}`) } }))
        .status,
    ).toBe(404);
    const escape = encodeURIComponent("../hangar.db");
    expect(
      (await fetch(`${alpha.url}${INTERNAL_IMAGES_PATH}${escape}`, { headers: { [CLUSTER_HEADER]: issuePass(alpha.hangar.clusterKey, "image:../hangar.db") } }))
        .status,
    ).toBe(403);
  });

  it("open no terminal without a pass", async () => {
    const alpha = cluster.peer("alpha");
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${alpha.url.replace("http", "ws")}${INTERNAL_TERMINAL_PATH}`);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => undefined);
    });
    expect(status).toBe(403);
  });
});
