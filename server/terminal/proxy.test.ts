// Terminals of a VM on another host: the WebSocket lands on alpha, which checks the Origin
// and the ticket and pipes it to beta, where the VM lives. Beta's qemu monitor is an echo
// server here (the real console through another host is in server/cluster/).
import net from "node:net";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Manager } from "../driver/manager.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, tinyImage } from "../testing/fixtures.ts";
import { startPeers } from "../testing/peers.ts";
import { decodeControl } from "./protocol.ts";

const fake = new FakeDriver();
/** Beta's monitors: each connection echoes what it receives, as a shell would show typing. */
const echo = net.createServer((socket) => socket.pipe(socket));
const echoConnections = new Set<net.Socket>();
echo.on("connection", (socket) => {
  echoConnections.add(socket);
  socket.on("close", () => echoConnections.delete(socket));
});
let cluster: Awaited<ReturnType<typeof startPeers>>;
let vmId: string;

function betaDriver(id: string): Manager {
  return { ...fake.managerFor(id), monitor: async () => net.connect((echo.address() as AddressInfo).port, "127.0.0.1") };
}

beforeAll(async () => {
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  cluster = await startPeers(["alpha", "beta"], (name) => (name === "beta" ? betaDriver : fake.managerFor));
  const beta = await callerFor(cluster.peer("beta").hangar);
  const image = await tinyImage(cluster.peer("beta").hangar);
  const vm = await beta.vm.create({ name: "far", imageId: image.id, cpus: 1, memoryMiB: 128, hostId: await cluster.peer("beta").hangar.hosts.selfId() });
  await beta.vm.start({ id: vm.id });
  vmId = vm.id;
});
afterAll(async () => {
  await cluster.close();
  echo.close();
});

/** A terminal opened on `host`'s endpoint with a ticket from `issuer`, and what it received. */
async function open(host: string, issuer: string, origin = cluster.peer(host).url) {
  const { path } = await (await callerFor(cluster.peer(issuer).hangar)).terminal.ticket({ vmId, kind: "monitor" });
  const ws = new WebSocket(`${cluster.peer(host).url.replace("http", "ws")}${path}`, { headers: { origin } });
  let text = "";
  const controls: unknown[] = [];
  let closeCode = 0;
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary) text += data.toString("utf8");
    else controls.push(decodeControl(data.toString("utf8")));
  });
  ws.on("close", (code) => (closeCode = code));
  const opened = await new Promise<number>((resolve) => {
    ws.once("open", () => resolve(101));
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.on("error", () => undefined);
  });
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`never saw ${what}; got ${JSON.stringify({ text, controls, closeCode })}`);
      await sleep(20);
    }
  };
  return { ws, opened, text: () => text, controls, closeCode: () => closeCode, until };
}

describe("a terminal of a VM on another host", () => {
  it("is piped through the host it landed on, both ways, and counted on both", async () => {
    const alpha = cluster.peer("alpha").hangar;
    const beta = cluster.peer("beta").hangar;
    const terminal = await open("alpha", "alpha");
    expect(terminal.opened).toBe(101);
    terminal.ws.send(Buffer.from("info status\n"), { binary: true });
    await terminal.until(() => terminal.text().includes("info status"), "the echo through beta");
    expect(alpha.terminals.counts().monitor).toBe(1);
    expect(beta.terminals.counts().monitor).toBe(1);
    expect(echoConnections.size).toBe(1);
    terminal.ws.close();
    await terminal.until(() => beta.terminals.counts().monitor === 0 && echoConnections.size === 0, "beta letting go of the monitor");
    expect(alpha.terminals.counts().monitor).toBe(0);
  });

  it("takes a ticket one host issued on any host", async () => {
    const terminal = await open("beta", "alpha");
    expect(terminal.opened).toBe(101);
    terminal.ws.send(Buffer.from("from beta\n"), { binary: true });
    await terminal.until(() => terminal.text().includes("from beta"), "the echo");
    terminal.ws.close();
    await terminal.until(() => echoConnections.size === 0, "the monitor closed");
  });

  it("is refused at the host it landed on for a foreign Origin, before the ticket is spent", async () => {
    const { path } = await (await callerFor(cluster.peer("alpha").hangar)).terminal.ticket({ vmId, kind: "monitor" });
    const attempt = (origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${cluster.peer("alpha").url.replace("http", "ws")}${path}`, { headers: { origin } });
        ws.once("open", () => {
          resolve(101);
          ws.close();
        });
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("error", () => undefined);
      });
    expect(await attempt("http://evil.example")).toBe(403);
    expect(await attempt(cluster.peer("alpha").url)).toBe(101);
    expect(await attempt(cluster.peer("alpha").url)).toBe(403);
    await sleep(200);
  });

  it("says which host does not answer when the VM's host is down", async () => {
    const db = cluster.peer("alpha").hangar.db;
    const beta = await db.host.findUniqueOrThrow({ where: { name: "beta" } });
    // Nothing listens on port 9 of this host.
    await db.host.update({ where: { id: beta.id }, data: { apiAddress: "http://127.0.0.1:9" } });
    try {
      const terminal = await open("alpha", "alpha");
      await terminal.until(() => terminal.closeCode() !== 0, "the socket closing");
      expect(terminal.controls).toEqual([{ type: "error", message: "Host beta, where this VM runs, does not answer; try again shortly." }]);
      expect(terminal.closeCode()).toBe(1011);
    } finally {
      await db.host.update({ where: { id: beta.id }, data: { apiAddress: beta.apiAddress } });
    }
  });

  it("says the connection to the VM's host was lost when it drops mid-session", async () => {
    const db = cluster.peer("alpha").hangar.db;
    const beta = await db.host.findUniqueOrThrow({ where: { name: "beta" } });
    // Alpha reaches beta through a relay whose connections are cut, as a host killed with -9 cuts them.
    const betaPort = Number(new URL(beta.apiAddress).port);
    const cut = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(betaPort, "127.0.0.1");
      inbound.pipe(outbound).pipe(inbound);
      cut.add(inbound).add(outbound);
      inbound.on("error", () => undefined);
      outbound.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    await db.host.update({ where: { id: beta.id }, data: { apiAddress: `http://127.0.0.1:${(relay.address() as AddressInfo).port}` } });
    try {
      const terminal = await open("alpha", "alpha");
      terminal.ws.send(Buffer.from("before the cut\n"), { binary: true });
      await terminal.until(() => terminal.text().includes("before the cut"), "the echo through the relay");
      for (const socket of cut) socket.destroy();
      await terminal.until(() => terminal.closeCode() !== 0, "the socket closing");
      expect(terminal.controls).toEqual([
        {
          type: "error",
          message: "The connection to host beta, where this VM runs, was lost; open the terminal again (if that host is down, once it is back).",
        },
      ]);
      expect(terminal.closeCode()).toBe(1011);
    } finally {
      await db.host.update({ where: { id: beta.id }, data: { apiAddress: beta.apiAddress } });
      relay.close();
    }
  });
});
