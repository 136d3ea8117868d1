// Live changes over the dashboard's one WebSocket (/api/trpc-ws): each change carries the
// VM's list row and the event recorded for it, a reconnect with the last event id gets what
// it missed, and the upgrade is refused to foreign origins. Real HTTP server, real tRPC
// WebSocket client.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { TRPCClientError, createTRPCClient, createWSClient, wsLink, type TRPCClient } from "@trpc/client";
import superjson from "superjson";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createHttpServer } from "../http-server.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar } from "../testing/fixtures.ts";
import { REPLAY_LIMIT, type LiveChange, type LiveMessage } from "../vms/changes.ts";
import type { AppRouter } from "./root.ts";
import { MAX_SUBSCRIPTIONS_PER_USER, UNREADABLE_INPUT } from "./trpc.ts";
import { TRPC_WS_PATH } from "./ws.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve() {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const t = await createTestHangar({ driverFor: new FakeDriver().managerFor, settings: { PORT: port } });
  createHttpServer(
    { hangar: t.hangar, dev: false, pages: { handle: async (_q, r) => void r.end(), handleUpgrade: async (_q, s) => void s.destroy() } },
    server,
  );
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    t.hangar.terminals.close();
    await t.cleanup();
  });
  const admin = await callerFor(t.hangar, "admin");
  const token = await admin.token.create({ name: "live" });
  return { t, port, admin, token: token.token, origin: `http://127.0.0.1:${port}` };
}

/** A tRPC client over the WebSocket, as the dashboard has one, authenticated with a token. */
function wsClient(port: number, token: string, origin?: string): TRPCClient<AppRouter> {
  class WithHeaders extends WebSocket {
    constructor(url: string | URL) {
      super(url, { headers: { authorization: `Bearer ${token}`, ...(origin ? { origin } : {}) } });
    }
  }
  const client = createWSClient({
    url: `ws://127.0.0.1:${port}${TRPC_WS_PATH}`,
    WebSocket: WithHeaders as unknown as typeof globalThis.WebSocket,
    retryDelayMs: () => 100,
  });
  cleanups.push(() => client.close());
  return createTRPCClient<AppRouter>({ links: [wsLink({ client, transformer: superjson })] });
}

/** Every message of one subscription (tracked ids too) until `done` says enough. */
function messages(client: TRPCClient<AppRouter>, input: { lastEventId?: string } | undefined, done: (seen: { id: string; data: LiveMessage }[]) => boolean) {
  const seen: { id: string; data: LiveMessage }[] = [];
  return new Promise<typeof seen>((resolve, reject) => {
    const subscription = client.vm.onChange.subscribe(input, {
      onData: (tracked) => {
        seen.push(tracked);
        if (done(seen)) {
          subscription.unsubscribe();
          resolve(seen);
        }
      },
      onError: reject,
    });
    cleanups.push(() => subscription.unsubscribe());
  });
}

/** The changes among `seen` (the stream's start left out: its own test below). */
const changesOf = (seen: { data: LiveMessage }[]) => seen.flatMap(({ data }) => ("caughtUp" in data ? [] : [data]));

/** Collects the changes of one subscription until `done` says enough. */
async function collect(client: TRPCClient<AppRouter>, input: { lastEventId?: string } | undefined, done: (changes: LiveChange[]) => boolean) {
  return changesOf(await messages(client, input, (seen) => done(changesOf(seen))));
}

describe("vm.onChange over /api/trpc-ws", () => {
  it("carries each change with the VM's list row (no user-data) to every listening tab", async () => {
    const { t, port, admin, token, origin } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "watched", imageId: image.id, cpus: 1, memoryMiB: 128, userData: "#cloud-config\n# long\n" });
    const started = (changes: LiveChange[]) => changes.some((c) => c.state === "Running");
    const listening = t.hangar.bus.listeners();
    const tabs = [wsClient(port, token, origin), wsClient(port, token, origin), wsClient(port, token)];
    const seen = Promise.all(tabs.map((tab) => collect(tab, undefined, started)));
    // Subscriptions start asynchronously: start once all three listen.
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 3);
    await admin.vm.start({ id: vm.id });
    for (const changes of await seen) {
      const running = changes.find((c) => c.state === "Running");
      expect(running?.row).toMatchObject({ id: vm.id, name: "watched", state: "Running", actions: ["Stop", "Suspend"] });
      expect(running?.row).not.toHaveProperty("userData");
      expect(changes.map((c) => c.state)).toEqual(["Starting", "Running"]);
    }
  });

  it("carries a stopped VM's new CPUs and memory to listening tabs, with the resize's event id", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "grown", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const listening = t.hangar.bus.listeners();
    const seen = collect(wsClient(port, token), undefined, (changes) => changes.length > 0);
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 1);
    await admin.vm.resize({ id: vm.id, cpus: 2, memoryMiB: 256 });
    const [change] = await seen;
    const event = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "resize" } });
    expect(change).toMatchObject({ vmId: vm.id, state: "Stopped", eventId: event.id, row: { id: vm.id, cpus: 2, memoryMiB: 256 } });
  });

  it("carries the event recorded for each change, as vm.events lists it; a state in progress and the row's removal have none", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "evented", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const listening = t.hangar.bus.listeners();
    const seen = collect(wsClient(port, token), undefined, (changes) => changes.some((c) => c.state === "Gone"));
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 1);
    await admin.vm.start({ id: vm.id });
    await admin.vm.setTags({ id: vm.id, tags: ["web"] });
    await admin.vm.stop({ id: vm.id, timeoutSec: 0 });
    const stored = (await admin.vm.events({ vmId: vm.id, limit: 50 })).events;
    await admin.vm.delete({ id: vm.id });
    const changes = (await seen).filter((c) => c.vmId === vm.id);
    // The readiness of the fake guest may settle (a Running event) before the tags or after.
    const lines = changes.map((c) => [c.state, c.event ? `${c.event.action} ${c.event.ok ? "ok" : "FAILED"}` : null]).filter(([, e]) => e !== "ready ok");
    expect(lines).toEqual([
      ["Starting", null],
      ["Running", "start ok"],
      ["Running", "tags ok"],
      ["Stopping", null],
      ["Stopped", "stop ok"],
      ["Deleting", null],
      ["Deleted", "delete ok"],
      ["Gone", null],
    ]);
    // Each recorded event as vm.events lists it: its id is the change's, its fields the stored ones.
    for (const change of changes.filter((c) => c.event && c.state !== "Deleted")) {
      expect(change.event?.id).toBe(change.eventId);
      expect(change.event).toEqual(stored.find((e) => e.id === change.eventId));
    }
    expect(changes.find((c) => c.state === "Deleted")?.event).toMatchObject({
      stream: "vm",
      vmName: "evented",
      action: "delete",
      ok: true,
      message: "Deleted",
    });
  });

  it("carries the events that leave the state as it is: description, forwards, snapshots, disk, autostart", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "kept", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const listening = t.hangar.bus.listeners();
    const seen = collect(wsClient(port, token), undefined, (changes) => changes.some((c) => c.event?.action === "autostart"));
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 1);
    await admin.vm.describe({ id: vm.id, description: "the web tier" });
    await admin.vm.addForward({ id: vm.id, hostPort: 0, guestPort: 80 });
    await admin.vm.removeForward({ id: vm.id, guestPort: 80 });
    await admin.snapshot.create({ id: vm.id, name: "before" });
    await admin.snapshot.delete({ id: vm.id, name: "before" });
    await admin.vm.resizeDisk({ id: vm.id, diskGiB: 20 });
    await admin.vm.setAutostart({ id: vm.id, autostart: true });
    const changes = (await seen).filter((c) => c.vmId === vm.id);
    expect(changes.map((c) => [c.state, c.event?.action])).toEqual([
      ["Stopped", "describe"],
      ["Stopped", "forward-add"],
      ["Stopped", "forward-remove"],
      ["Stopped", "snapshot-create"],
      ["Stopped", "snapshot-delete"],
      ["Stopped", "disk-resize"],
      ["Stopped", "autostart"],
    ]);
    expect(changes[1]?.row?.ports).toEqual([expect.objectContaining({ guestPort: 80 })]);
    expect(changes[2]?.row?.ports).toEqual([]);
  });

  it("resumes from the last event id: a reconnect first gets the changes it missed", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "resumed", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const last = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id }, orderBy: { createdAt: "desc" } });
    await admin.vm.start({ id: vm.id });
    await admin.vm.stop({ id: vm.id, timeoutSec: 0 });
    const missed = await collect(wsClient(port, token), { lastEventId: last.id }, (changes) => changes.some((c) => c.state === "Stopped"));
    // The start, its readiness settling (a Running event), the stop: each with the row as it is now.
    expect(missed.map((c) => c.state)).toEqual([...missed.slice(0, -1).map(() => "Running"), "Stopped"]);
    expect(missed.length).toBeGreaterThanOrEqual(2);
    expect(missed.every((c) => c.row?.state === "Stopped")).toBe(true);
    // With the events as they were recorded: the start's, maybe the ready condition's, the stop's.
    expect(missed.map((c) => c.event?.id)).toEqual(missed.map((c) => c.eventId));
    expect([missed[0]?.event?.action, missed.at(-1)?.event?.action]).toEqual(["start", "stop"]);
  });

  const caughtUp = (message: LiveMessage) => ("caughtUp" in message ? message.caughtUp : undefined);

  it("tells a new subscription to read its lists, and a resumed one that missed only changes it replayed that it has caught up", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "resumed-rows", imageId: image.id, cpus: 1, memoryMiB: 128 });
    // A tab that has seen no change yet: its resume point is the start's, a time.
    const [start] = await messages(wsClient(port, token), undefined, () => true);
    expect(start?.data).toEqual({ caughtUp: false });
    // Missed while away: row changes that move no state (tags, a rename) as well as states.
    await admin.vm.setTags({ id: vm.id, tags: ["web"] });
    await admin.vm.rename({ id: vm.id, name: "renamed-rows" });
    await admin.vm.start({ id: vm.id });
    const resumed = await messages(wsClient(port, token), { lastEventId: start?.id }, (seen) => seen.some((m) => "caughtUp" in m.data));
    const replayed = resumed.flatMap((m) => ("caughtUp" in m.data ? [] : [m.data]));
    expect(replayed.map((c) => c.event?.action)).toEqual(expect.arrayContaining(["tags", "rename", "start"]));
    expect(replayed.every((c) => c.row?.name === "renamed-rows" && c.row.tags.includes("web"))).toBe(true);
    expect(caughtUp(resumed.at(-1)!.data)).toBe(true);
  });

  it("tells a resumed subscription to read its lists again when it missed more than is replayed, or a deletion", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const kept = await admin.vm.create({ name: "kept", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const gone = await admin.vm.create({ name: "gone", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const last = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: gone.id }, orderBy: { createdAt: "desc" } });
    await admin.vm.delete({ id: gone.id });
    const afterDelete = await messages(wsClient(port, token), { lastEventId: last.id }, (seen) => seen.some((m) => "caughtUp" in m.data));
    expect(caughtUp(afterDelete.at(-1)!.data)).toBe(false);

    const mark = await t.hangar.db.event.findFirstOrThrow({ orderBy: [{ createdAt: "desc" }, { id: "desc" }] });
    await t.hangar.db.event.createMany({
      data: Array.from({ length: REPLAY_LIMIT + 1 }, (_, i) => ({
        stream: "vm",
        vmId: kept.id,
        vmName: kept.name,
        actor: "test",
        action: "exec",
        ok: true,
        message: `run ${i}`,
        createdAt: new Date(mark.createdAt.getTime() + 1 + i),
      })),
    });
    const farBehind = await messages(wsClient(port, token), { lastEventId: mark.id }, (seen) => seen.some((m) => "caughtUp" in m.data));
    expect(farBehind.map((m) => m.data)).toEqual([{ caughtUp: false }]);
  });

  it("carries the row a VM had before each change, so a tab can tell whether a list it has not read to the end held it", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    const vm = await admin.vm.create({ name: "before-name", imageId: image.id, cpus: 1, memoryMiB: 128 });
    const listening = t.hangar.bus.listeners();
    const seen = collect(wsClient(port, token), undefined, (changes) => changes.some((c) => c.state === "Running"));
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 1);
    await admin.vm.rename({ id: vm.id, name: "after-name" });
    await admin.vm.start({ id: vm.id });
    const [renamed, ...rest] = await seen;
    // The first change this process read of the VM: what it was before is not known.
    expect(renamed).toMatchObject({ row: { name: "after-name", state: "Stopped" }, before: null });
    expect(rest.map((c) => [c.state, c.before?.name, c.before?.state])).toEqual([
      ["Starting", "after-name", "Stopped"],
      ["Running", "after-name", "Starting"],
    ]);
    // Unless lists were served since: then it is the row they were served with.
    const listed = await admin.vm.create({ name: "listed", imageId: image.id, cpus: 1, memoryMiB: 128 });
    // (Listing also starts vm.list's own listener, which counts changes.)
    await admin.vm.list();
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 1);
    const next = collect(wsClient(port, token), undefined, (changes) => changes.some((c) => c.vmId === listed.id));
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening + 2);
    await admin.vm.setTags({ id: listed.id, tags: ["web"] });
    expect((await next).find((c) => c.vmId === listed.id)).toMatchObject({ row: { tags: ["web"] }, before: { name: "listed", tags: [] } });
  });

  it("sends the VM table's usage figures only while some VM runs, and one empty sample to clear them", async () => {
    const { t, port, token } = await serve();
    const usage = { cpuPercent: 5, rssMiB: 64 };
    const running = [[], [], [{ id: "a", usage }], [{ id: "a", usage }], [], [], []];
    // Samples as the sampler would emit them, each with the VMs that run then.
    const samples = running.map((vms, at) => ({ at, vms }));
    Object.assign(t.hangar.metrics, {
      samples: async function* () {
        yield* samples;
      },
      usages: (sample: { vms: { id: string; usage: typeof usage }[] }) => sample.vms,
    });
    const sent = await new Promise<unknown[]>((resolve, reject) => {
      const seen: unknown[] = [];
      wsClient(port, token).metrics.onUsage.subscribe(undefined, { onData: (data) => seen.push(data), onComplete: () => resolve(seen), onError: reject });
    });
    expect(sent).toEqual([[], [{ id: "a", usage }], [{ id: "a", usage }], []]);
  });

  it("says in its own words that it cannot read a message, not the library's", async () => {
    const { port, token } = await serve();
    const socket = new WebSocket(`ws://127.0.0.1:${port}${TRPC_WS_PATH}`, { headers: { authorization: `Bearer ${token}` } });
    cleanups.push(() => socket.close());
    const answers: string[] = [];
    socket.on("message", (data: Buffer) => answers.push((JSON.parse(data.toString()) as { error: { json: { message: string } } }).error.json.message));
    await new Promise((resolve) => socket.once("open", resolve));
    // JSON that is not JSON; no input where superjson wants one ("Cannot destructure property 'json'…"); a custom type nobody registered.
    socket.send("{");
    socket.send('{"id":1,"method":"query","params":{"path":"vm.get","input":null}}');
    socket.send('{"id":2,"method":"query","params":{"path":"vm.get","input":{"json":{"id":"x"},"meta":{"values":{"id":[["custom","Nope"]]}}}}}');
    await expect.poll(() => answers.length).toBe(3);
    expect(answers).toEqual([UNREADABLE_INPUT, UNREADABLE_INPUT, UNREADABLE_INPUT]);
  });

  it("refuses the upgrade from a foreign origin, and calls without a principal", async () => {
    const { port } = await serve();
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}${TRPC_WS_PATH}`, { headers: { origin: "http://evil.example" } });
      socket.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      socket.on("open", () => resolve(101));
    });
    expect(status).toBe(403);
    const anonymous = wsClient(port, "hgr_not-a-token");
    await expect(collect(anonymous, undefined, () => true)).rejects.toMatchObject({ data: { code: "UNAUTHORIZED" } });
  });
});

describe("a socket that outlives its credentials", () => {
  /** A subscription to vm.onChange, and the error that ends it. */
  function subscribed(client: TRPCClient<AppRouter>) {
    let started: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const ended = new Promise<unknown>((resolve) => {
      const subscription = client.vm.onChange.subscribe(undefined, { onStarted: () => started(), onData: () => undefined, onError: resolve });
      cleanups.push(() => subscription.unsubscribe());
    });
    return { ready, ended };
  }

  it("ends a revoked token's subscriptions and refuses its calls", async () => {
    const { port, admin } = await serve();
    const made = await admin.token.create({ name: "soon-revoked" });
    const client = wsClient(port, made.token);
    expect((await client.account.me.query()).user?.email).toBe("admin@test.hangar");
    const live = subscribed(client);
    await live.ready;
    await admin.token.revoke({ id: made.id });
    // The socket is closed; the client's reconnect has no principal, so the subscription fails.
    await expect(live.ended).resolves.toMatchObject({ data: { code: "UNAUTHORIZED" } });
    await expect(client.account.me.query()).resolves.toMatchObject({ user: null });
    await expect(client.token.create.mutate({ name: "minted-after-revoke" })).rejects.toMatchObject({ data: { code: "UNAUTHORIZED" } });
  });

  it("serves no subscription over plain HTTP, where nothing would end it when the token is revoked", async () => {
    const { t, port, admin, token } = await serve();
    const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
    // tRPC answers a subscription GET with server-sent events; this one says why and ends.
    const input = encodeURIComponent(JSON.stringify({ json: {} }));
    for (const path of [`vm.onChange?input=${input}`, "metrics.onUsage"]) {
      const response = await fetch(`http://127.0.0.1:${port}/api/trpc/${path}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      const stream = await response.text();
      expect(stream).toContain("Live changes come over the API WebSocket (tRPC's wsLink to ws://HOST/api/trpc-ws), not over HTTP.");
      expect(stream).not.toContain('"vmId"');
    }
    // No listener was left on the bus: a change made now reaches nobody over HTTP.
    const listening = t.hangar.bus.listeners();
    await admin.vm.create({ name: "unseen", imageId: image.id, cpus: 1, memoryMiB: 128 });
    expect(t.hangar.bus.listeners()).toBe(listening);
  });

  it("refuses a user's subscriptions past the limit, over all their sockets, and takes new ones as old ones end", async () => {
    const { t, port } = await serve();
    const viewer = await callerFor(t.hangar, "viewer");
    const { token } = await viewer.token.create({ name: "wall-display", readOnly: true });
    const sockets = [wsClient(port, token), wsClient(port, token)];
    const held = Array.from({ length: MAX_SUBSCRIPTIONS_PER_USER }, (_, i) => {
      let started: () => void = () => undefined;
      const ready = new Promise<void>((resolve) => (started = resolve));
      const subscription = (sockets[i % 2] ?? sockets[0])?.vm.onChange.subscribe(undefined, { onStarted: () => started(), onData: () => undefined });
      cleanups.push(() => subscription?.unsubscribe());
      return { ready, subscription };
    });
    await Promise.all(held.map((h) => h.ready));
    const listening = t.hangar.bus.listeners();
    await expect(subscribed(sockets[0] ?? wsClient(port, token)).ended).resolves.toMatchObject({
      data: { code: "TOO_MANY_REQUESTS" },
      message: `You hold ${MAX_SUBSCRIPTIONS_PER_USER} live subscriptions on this host already (a tab holds a few); end some, or close tabs or connections, first.`,
    });
    // Another user is not held back by this one's.
    const { token: adminToken } = await (await callerFor(t.hangar, "admin")).token.create({ name: "admin-live" });
    await subscribed(wsClient(port, adminToken)).ready;
    held[0]?.subscription?.unsubscribe();
    await expect.poll(() => t.hangar.bus.listeners()).toBe(listening);
    await subscribed(sockets[1] ?? wsClient(port, token)).ready;
  });

  it("gives a demoted admin a viewer's rights over the WebSocket from then on", async () => {
    const { t, port, admin } = await serve();
    const demoted = await callerFor(t.hangar, "admin", "demoted@test.hangar");
    const made = await demoted.token.create({ name: "admin-for-now" });
    const client = wsClient(port, made.token);
    expect((await client.user.list.query()).length).toBeGreaterThan(0);
    const user = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "demoted@test.hangar" } });
    await admin.user.update({ id: user.id, role: "viewer" });
    // A call in flight when the socket closes fails as the connection does; the next is refused.
    const outcome = () =>
      client.user.list.query().then(
        () => "allowed",
        (error: unknown) => (error instanceof TRPCClientError ? (error.data?.code ?? "connection closed") : "other"),
      );
    await expect.poll(outcome, { timeout: 5000 }).toBe("FORBIDDEN");
    const promote = () =>
      client.user.update.mutate({ id: user.id, role: "admin" }).then(
        () => "allowed",
        (error: unknown) => (error instanceof TRPCClientError ? (error.data?.code ?? "connection closed") : "other"),
      );
    await expect.poll(promote, { timeout: 5000 }).toBe("FORBIDDEN");
    expect((await t.hangar.db.user.findUniqueOrThrow({ where: { id: user.id } })).role).toBe("viewer");
  });
});
