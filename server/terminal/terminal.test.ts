// Tickets, origins, the protocol codec, and the console hub with a fake serial socket.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Manager } from "../driver/manager.ts";
import { VmBus } from "../vms/bus.ts";
import { originAllowed } from "./bridge.ts";
import { HIGH_WATER, Scrollback, createConsoleHub, type Viewer } from "./console-hub.ts";
import { decodeControl, encodeControl } from "./protocol.ts";
import { createTicketStore } from "./tickets.ts";

const grant = { userId: "u1", actor: "a@x", vmId: "vm1", kind: "console" as const, readOnly: false };

describe("tickets", () => {
  it("are single use", () => {
    const store = createTicketStore();
    const ticket = store.issue(grant);
    expect(store.redeem(ticket)).toEqual(grant);
    expect(store.redeem(ticket)).toBeUndefined();
  });

  it("expire after 30 s", () => {
    let now = 1_000_000;
    const store = createTicketStore({ now: () => now });
    const ticket = store.issue(grant);
    now += 30_001;
    expect(store.redeem(ticket)).toBeUndefined();
  });

  it("are bound to the VM and the kind, and burn on a wrong try", () => {
    const store = createTicketStore();
    const a = store.issue(grant);
    expect(store.redeem(a, { vmId: "vm2" })).toBeUndefined();
    expect(store.redeem(a)).toBeUndefined();
    const b = store.issue(grant);
    expect(store.redeem(b, { kind: "shell" })).toBeUndefined();
    const c = store.issue(grant);
    expect(store.redeem(c, { vmId: "vm1", kind: "console" })).toEqual(grant);
    expect(store.redeem("made-up")).toBeUndefined();
  });
});

describe("origin check", () => {
  const cases: [string | undefined, string | undefined, boolean][] = [
    ["http://127.0.0.1:3000", "127.0.0.1:3000", true],
    [undefined, "127.0.0.1:3000", false],
    ["http://evil.example", "127.0.0.1:3000", false],
    ["https://127.0.0.1:3000", "127.0.0.1:3000", false],
    ["http://127.0.0.1:3001", "127.0.0.1:3000", false],
    ["null", "127.0.0.1:3000", false],
    ["https://hangar.example.com", "127.0.0.1:3000", true],
  ];
  it.each(cases)("origin %s for host %s: %s", (origin, host, allowed) => {
    expect(originAllowed(origin, host, ["https://hangar.example.com"])).toBe(allowed);
  });
});

describe("protocol", () => {
  it("round-trips control messages and clamps sizes", () => {
    expect(decodeControl(encodeControl({ type: "exit", code: 3 }))).toEqual({ type: "exit", code: 3 });
    expect(decodeControl(encodeControl({ type: "status", state: "Stopped" }))).toEqual({ type: "status", state: "Stopped" });
    expect(decodeControl('{"type":"resize","cols":100000,"rows":-5}')).toEqual({ type: "resize", cols: 500, rows: 1 });
    expect(decodeControl('{"type":"resize","cols":"80","rows":24}')).toBeUndefined();
    expect(decodeControl("not json")).toBeUndefined();
    expect(decodeControl('{"type":"rm -rf"}')).toBeUndefined();
  });

  it("keeps the last bytes of scrollback", () => {
    const scrollback = new Scrollback(10);
    scrollback.append(Buffer.from("0123456"));
    scrollback.append(Buffer.from("789abc"));
    expect(scrollback.contents().toString()).toBe("3456789abc");
  });
});

describe("console hub", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "hangar-hub-"));
  let server: net.Server | undefined;
  afterEach(() => server?.close());
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A fake qemu serial socket; `clients` holds the hub's one connection. */
  async function fakeSerial(name: string) {
    const socketPath = path.join(work, `${name}.sock`);
    const clients: net.Socket[] = [];
    server = net.createServer((client) => clients.push(client));
    await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
    const driver = {
      console: () => new Promise<net.Socket>((resolve) => {
        const socket = net.createConnection(socketPath, () => resolve(socket));
      }),
      serialTail: async () => "earlier output\r\n",
    } as unknown as Manager;
    return { clients, driverFor: () => driver };
  }

  function viewer(buffered = () => 0) {
    const received: Buffer[] = [];
    const statuses: string[] = [];
    const v: Viewer = { sendBytes: (b) => received.push(b), sendStatus: (s) => statuses.push(s), bufferedAmount: buffered };
    return { v, text: () => Buffer.concat(received).toString(), statuses };
  }

  it("holds one serial connection, sends scrollback first and fans live bytes out to every viewer", async () => {
    const serial = await fakeSerial("fanout");
    const bus = new VmBus();
    const hub = createConsoleHub({ bus, driverFor: serial.driverFor });
    const a = viewer();
    const b = viewer();
    const first = await hub.attach("vm1", a.v);
    await expect.poll(() => serial.clients.length).toBe(1);
    serial.clients[0]?.write("live one\r\n");
    await expect.poll(() => a.text()).toBe("earlier output\r\nlive one\r\n");
    const second = await hub.attach("vm1", b.v);
    serial.clients[0]?.write("live two\r\n");
    await expect.poll(() => a.text()).toBe("earlier output\r\nlive one\r\nlive two\r\n");
    await expect.poll(() => b.text()).toBe("earlier output\r\nlive one\r\nlive two\r\n");
    expect(serial.clients).toHaveLength(1);
    first.write(Buffer.from("root\n"));
    const typed = await new Promise<string>((resolve) => serial.clients[0]?.once("data", (d: Buffer) => resolve(d.toString())));
    expect(typed).toBe("root\n");
    bus.publish({ vmId: "vm1", vmName: "v", state: "Stopping", eventId: "" });
    expect(a.statuses).toEqual(["Stopping"]);
    first.detach();
    second.detach();
    await expect.poll(() => serial.clients[0]?.destroyed || serial.clients[0]?.readableEnded).toBe(true);
    expect(hub.viewerCounts()).toEqual({});
  });

  it("pauses a flooding source while a viewer is slow, keeping memory bounded", async () => {
    const serial = await fakeSerial("flood");
    let backlog = 0;
    const slow = viewer(() => backlog);
    const hub = createConsoleHub({ bus: new VmBus(), driverFor: serial.driverFor, drainCheckMs: 5 });
    const attached = await hub.attach("vm1", slow.v);
    await expect.poll(() => serial.clients.length).toBe(1);
    const source = serial.clients[0];
    if (!source) throw new Error("no serial client");
    const chunk = Buffer.alloc(64 * 1024, 120);
    backlog = HIGH_WATER + 1;
    let written = 0;
    // Write until the hub stops reading: the kernel buffers fill and write() reports it.
    while (source.write(chunk) && written < 512 * 1024 * 1024) written += chunk.length;
    await sleep(200);
    const receivedWhilePaused = slow.text().length;
    await sleep(200);
    expect(slow.text().length).toBe(receivedWhilePaused);
    expect(receivedWhilePaused).toBeLessThan(16 * 1024 * 1024);
    backlog = 0;
    await expect.poll(() => slow.text().length).toBeGreaterThan(receivedWhilePaused);
    attached.detach();
  });
});
