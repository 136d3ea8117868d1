// Tickets, the protocol codec, and the console hub with a fake serial socket.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NotRunningError, type Manager } from "../driver/manager.ts";
import { greetsWithSshBanner } from "../driver/qemu/ports.ts";
import { VmBus } from "../vms/bus.ts";
import { HIGH_WATER, STOPPED_NOTICE, Scrollback, TOO_SLOW_MESSAGE, createConsoleHub, type Viewer } from "./console-hub.ts";
import { decodeControl, encodeControl } from "./protocol.ts";
import { openShell, openSshSessions } from "./ssh-session.ts";
import { createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { createTicketStore } from "./tickets.ts";

const grant = { userId: "u1", actor: "a@x", vmId: "vm1", kind: "console" as const, readOnly: false };

describe("tickets", () => {
  let t: TestHangar;
  beforeAll(async () => {
    t = await createTestHangar();
  });
  afterAll(() => t.cleanup());

  it("are single use", async () => {
    const store = createTicketStore({ db: t.hangar.db });
    const ticket = await store.issue(grant);
    expect(await store.redeem(ticket)).toEqual(grant);
    expect(await store.redeem(ticket)).toBeUndefined();
  });

  it("expire after 30 s", async () => {
    let now = Date.now();
    const store = createTicketStore({ db: t.hangar.db, now: () => now });
    const ticket = await store.issue(grant);
    now += 30_001;
    expect(await store.redeem(ticket)).toBeUndefined();
  });

  it("are bound to the VM and the kind, and burn on a wrong try", async () => {
    const store = createTicketStore({ db: t.hangar.db });
    const a = await store.issue(grant);
    expect(await store.redeem(a, { vmId: "vm2" })).toBeUndefined();
    expect(await store.redeem(a)).toBeUndefined();
    const b = await store.issue(grant);
    expect(await store.redeem(b, { kind: "shell" })).toBeUndefined();
    const c = await store.issue({ ...grant, sessionId: "s1" });
    expect(await store.redeem(c, { vmId: "vm1", kind: "console" })).toEqual({ ...grant, sessionId: "s1" });
    expect(await store.redeem("made-up")).toBeUndefined();
  });

  it("are kept only as a hash, and one redeemed by two hosts at once is granted once", async () => {
    const store = createTicketStore({ db: t.hangar.db });
    const other = createTicketStore({ db: t.hangar.db });
    const ticket = await store.issue(grant);
    const rows = await t.hangar.db.terminalTicket.findMany();
    expect(rows.some((row) => row.hash === ticket || JSON.stringify(row).includes(ticket))).toBe(false);
    const results = await Promise.all([store.redeem(ticket), other.redeem(ticket), other.redeem(ticket)]);
    expect(results.filter(Boolean)).toEqual([grant]);
  });

  it("that expired unredeemed are removed as new ones are issued", async () => {
    let now = Date.now();
    const store = createTicketStore({ db: t.hangar.db, now: () => now });
    await t.hangar.db.terminalTicket.deleteMany();
    await store.issue(grant);
    now += 31_000;
    await store.issue(grant);
    expect(await t.hangar.db.terminalTicket.count()).toBe(1);
  });
});

describe("protocol", () => {
  it("round-trips control messages and clamps sizes", () => {
    expect(decodeControl(encodeControl({ type: "exit", code: 3 }))).toEqual({ type: "exit", code: 3 });
    expect(decodeControl(encodeControl({ type: "status", state: "Stopped" }))).toEqual({ type: "status", state: "Stopped" });
    expect(decodeControl('{"type":"resize","cols":100000,"rows":-5}')).toEqual({ type: "resize", cols: 500, rows: 1 });
    expect(decodeControl('{"type":"resize","cols":"80","rows":24}')).toBeUndefined();
    expect(decodeControl(encodeControl({ type: "error", message: 'VM "a" was deleted.' }))).toEqual({ type: "error", message: 'VM "a" was deleted.' });
    expect(decodeControl('{"type":"resize","cols":80.6,"rows":24}')).toEqual({ type: "resize", cols: 81, rows: 24 });
    expect(decodeControl('{"type":"resize","cols":1e999,"rows":24}')).toBeUndefined();
    expect(decodeControl("[1,2]")).toBeUndefined();
    expect(decodeControl("null")).toBeUndefined();
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

  /**
   * A fake qemu serial socket (a net.Server on a unix socket): `clients` holds the hub's
   * connections; stop() ends it like a qemu that exits, start() listens again.
   */
  async function fakeSerial(name: string) {
    const socketPath = path.join(work, `${name}.sock`);
    const clients: net.Socket[] = [];
    let log = "earlier output\r\n";
    const listen = async () => {
      server = net.createServer((client) => {
        clients.push(client);
        client.on("error", () => undefined);
      });
      await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
    };
    await listen();
    const timing = { connectDelayMs: 0 };
    const driver = {
      console: () =>
        new Promise<net.Socket>((resolve, reject) => {
          const connected = (socket: net.Socket) => setTimeout(() => resolve(socket), timing.connectDelayMs);
          const socket = net.createConnection(socketPath, () => connected(socket));
          socket.once("error", () => reject(new NotRunningError()));
        }),
      serialTail: async () => log,
    } as unknown as Manager;
    return {
      clients,
      timing,
      driverFor: () => driver,
      /** What the guest prints: to the connected client, if any, and always to serial.log. */
      print: (text: string) => {
        clients
          .filter((c) => !c.destroyed)
          .at(-1)
          ?.write(text);
        log += text;
      },
      stop: async () => {
        const stopping = server;
        for (const client of clients) client.destroy();
        await new Promise<void>((resolve) => (stopping ? stopping.close(() => resolve()) : resolve()));
      },
      start: listen,
    };
  }

  function viewer(buffered = () => 0) {
    const received: Buffer[] = [];
    const statuses: string[] = [];
    const closed: string[] = [];
    const v: Viewer = {
      sendBytes: (b) => received.push(b),
      sendStatus: (s) => statuses.push(s),
      bufferedAmount: buffered,
      close: (message) => closed.push(message),
    };
    return { v, text: () => Buffer.concat(received).toString(), statuses, closed };
  }

  /** A hub over a fake serial console named `name`, with one viewer attached once the hub has connected. */
  async function hubWithViewer(name: string) {
    const serial = await fakeSerial(name);
    const bus = new VmBus();
    const hub = createConsoleHub({ bus, driverFor: serial.driverFor });
    const watcher = viewer();
    const attached = await hub.attach("vm1", watcher.v);
    await expect.poll(() => serial.clients.length).toBe(1);
    return { serial, bus, hub, watcher, attached };
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

  it("lets go of a viewer that stays behind, so the others carry on", async () => {
    const serial = await fakeSerial("stall");
    const hub = createConsoleHub({ bus: new VmBus(), driverFor: serial.driverFor, drainCheckMs: 5, stallMs: 200 });
    const stuck = viewer(() => HIGH_WATER + 1);
    const fine = viewer();
    await hub.attach("vm1", stuck.v);
    await hub.attach("vm1", fine.v);
    await expect.poll(() => serial.clients.length).toBe(1);
    serial.clients[0]?.write(Buffer.alloc(1024, 97));
    await expect.poll(() => stuck.closed).toEqual([TOO_SLOW_MESSAGE]);
    serial.clients[0]?.write("still flowing");
    await expect.poll(() => fine.text().endsWith("still flowing")).toBe(true);
    expect(hub.viewerCounts()).toEqual({ vm1: 1 });
    hub.closeAll();
  });

  it("tells viewers when the VM stops and reconnects them by itself when it starts again", async () => {
    const { serial, bus, hub, watcher, attached } = await hubWithViewer("restart");
    serial.print("first boot\r\n");
    await expect.poll(() => watcher.text()).toContain("first boot");

    await serial.stop();
    await expect.poll(() => watcher.statuses).toContain("Stopped");
    expect(watcher.text()).toContain(STOPPED_NOTICE);
    // A viewer who comes now sees the history and the same notice.
    const late = viewer();
    const lateAttached = await hub.attach("vm1", late.v);
    expect(late.text()).toBe(`earlier output\r\nfirst boot\r\n${STOPPED_NOTICE}`);

    await serial.start();
    serial.print("second boot, before the hub attached\r\n");
    bus.publish({ vmId: "vm1", vmName: "v", state: "Running", eventId: "" });
    await expect.poll(() => serial.clients.length).toBe(2);
    serial.print("second boot\r\n");
    await expect.poll(() => watcher.text().endsWith("second boot\r\n")).toBe(true);
    expect(watcher.statuses).toEqual(["Stopped", "Running"]);
    // Newcomers get the log as it is now, which holds what was printed before the hub attached.
    const third = viewer();
    const thirdAttached = await hub.attach("vm1", third.v);
    expect(third.text()).toBe("earlier output\r\nfirst boot\r\nsecond boot, before the hub attached\r\nsecond boot\r\n");
    for (const a of [attached, lateAttached, thirdAttached]) a.detach();
    expect(hub.viewerCounts()).toEqual({});
  });

  it("says Suspending, not Stopped, when a suspend ends qemu", async () => {
    const { serial, bus, watcher, attached } = await hubWithViewer("suspend");
    bus.publish({ vmId: "vm1", vmName: "v", state: "Suspending", eventId: "" });
    await serial.stop();
    await expect.poll(() => watcher.text()).toContain(STOPPED_NOTICE);
    bus.publish({ vmId: "vm1", vmName: "v", state: "Suspended", eventId: "" });
    expect(watcher.statuses).toEqual(["Suspending", "Suspending", "Suspended"]);
    attached.detach();
  });

  it("closes viewers, saying where, when the VM moved to another host", async () => {
    const { serial, hub, watcher } = await hubWithViewer("moved");
    hub.movedAway("vm1", 'VM "mover" moved to host beta; open its console again.');
    expect(watcher.closed).toEqual(['VM "mover" moved to host beta; open its console again.']);
    expect(hub.viewerCounts()).toEqual({});
    await expect.poll(() => serial.clients[0]?.readableEnded || serial.clients[0]?.destroyed).toBe(true);
    hub.closeAll();
  });

  it("closes viewers when the VM is deleted, and undoes a connect that finishes after everyone left", async () => {
    const { serial, bus, hub, watcher } = await hubWithViewer("gone");
    bus.publish({ vmId: "vm1", vmName: "doomed", state: "Gone", eventId: "" });
    expect(watcher.closed).toEqual(['VM "doomed" was deleted.']);
    expect(hub.viewerCounts()).toEqual({});
    await expect.poll(() => serial.clients[0]?.readableEnded || serial.clients[0]?.destroyed).toBe(true);

    // The VM starts again, and its only viewer leaves while the hub is still connecting.
    const again = await hub.attach("vm1", viewer().v);
    await expect.poll(() => serial.clients.length).toBe(2);
    again.detach();
    serial.timing.connectDelayMs = 100;
    const last = await hub.attach("vm1", viewer().v);
    await serial.stop();
    await serial.start();
    bus.publish({ vmId: "vm1", vmName: "doomed", state: "Running", eventId: "" });
    await sleep(20);
    last.detach();
    await expect.poll(() => serial.clients.length).toBe(4);
    await expect.poll(() => serial.clients[3]?.readableEnded || serial.clients[3]?.destroyed).toBe(true);
    expect(hub.viewerCounts()).toEqual({});
    hub.closeAll();
  });
});

describe("ssh session", () => {
  it("says the VM is still booting while SSH does not answer, then gives up instead of hanging", async () => {
    // What qemu's forward does before the guest listens: accept, then hang up.
    const forward = net.createServer((client) => client.destroy());
    await new Promise<void>((resolve) => forward.listen(0, "127.0.0.1", resolve));
    const port = (forward.address() as net.AddressInfo).port;
    const events: string[] = [];
    const started = Date.now();
    await new Promise<void>((resolve) => {
      openShell(
        {
          sshPort: port,
          user: "hangar",
          privateKey: "unused",
          cols: 80,
          rows: 24,
          sshAnswers: () => greetsWithSshBanner(port, "127.0.0.1", 200),
          bootWaitMs: 1000,
        },
        {
          onData: () => events.push("data"),
          onBooting: () => events.push("booting"),
          onReady: () => events.push("ready"),
          onExit: () => events.push("exit"),
          onError: (message) => events.push(message),
          onClose: () => resolve(),
        },
      );
    });
    forward.close();
    expect(events).toEqual(["booting", expect.stringMatching(/^The VM is still booting: .*Gave up after 1 s/)]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(openSshSessions()).toBe(0);
  });
});
