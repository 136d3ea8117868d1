// A call forwarded to the VM's host when that host stops beating with the call in hand (its
// Hangar killed): the caller is told so once the heartbeat is stale, instead of waiting out
// the call's whole budget (minutes), and a read that answers from the database does so.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, tinyImage } from "../testing/fixtures.ts";
import { startPeers } from "../testing/peers.ts";
import { runForwardedCall } from "./serve.ts";

const fake = new FakeDriver();
let cluster: Awaited<ReturnType<typeof startPeers>>;

beforeAll(async () => {
  cluster = await startPeers(["alpha", "beta"], () => fake.managerFor);
  for (const peer of cluster.peers) await peer.hangar.cluster.serve((data) => runForwardedCall(peer.hangar, data));
});
afterAll(async () => {
  for (const peer of cluster.peers) await peer.hangar.cluster.close();
  await cluster.close();
});

describe("a refusal the VM's host phrases about itself", () => {
  it("names that host to a caller on another host", async () => {
    const alphaHangar = cluster.peer("alpha").hangar;
    const betaHangar = cluster.peer("beta").hangar;
    const alpha = await callerFor(alphaHangar);
    const image = await tinyImage(betaHangar);
    const vm = await alpha.vm.create({ name: "synced", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await betaHangar.hosts.selfId() });
    // Beta has no sync root: its own sentence says "on this host", which alpha is not.
    await expect(alpha.vm.sync({ id: vm.id, from: "site", to: "/srv" })).rejects.toThrow(
      "The sync root (HANGAR_SYNC_ROOT) does not exist on host beta; an admin must create it and put the files there.",
    );
  });
});

describe("a host that stops beating with a forwarded call in hand", () => {
  it("fails the call with HOST_OFFLINE, naming the host, and vm.get then answers from the database", async () => {
    const alphaHangar = cluster.peer("alpha").hangar;
    const betaHangar = cluster.peer("beta").hangar;
    const betaId = await betaHangar.hosts.selfId();
    const alpha = await callerFor(alphaHangar);
    const image = await tinyImage(betaHangar);
    const vm = await alpha.vm.create({ name: "far", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: betaId });
    expect(await alpha.vm.start({ id: vm.id })).toMatchObject({ state: "Running" });

    // Nobody suspends it: beta holds this call until its timeout, past this test's own.
    const waiting = alpha.vm.wait({ id: vm.id, for: "Suspended", timeoutSec: 300 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    await sleep(500);
    // Beta's heartbeat stops, as when its Hangar is killed.
    await alphaHangar.db.host.update({ where: { id: betaId }, data: { heartbeatAt: new Date(Date.now() - 60_000) } });
    expect(await waiting).toMatchObject({
      code: "PRECONDITION_FAILED",
      message: expect.stringMatching(/^Host beta went offline \(no heartbeat for \d+ s\) before it answered vm\.wait; /),
    });

    expect(await alpha.vm.get({ id: vm.id })).toMatchObject({ state: "Running", hostOffline: true });
  });
});
