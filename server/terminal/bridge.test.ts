// The bridge on a real HTTP server, against the real tiny guest: console, shell, exec, sync.
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createCaller } from "../api/root.ts";
import { IN_PROCESS } from "../api/trpc.ts";
import { authenticate } from "../auth/principal.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { sshWhenReady } from "../testing/guest.ts";
import { TERMINAL_PATH, createTerminalBridge, terminalPath, withoutCursorReports, type TerminalBridge } from "./bridge.ts";
import { STOPPED_NOTICE } from "./console-hub.ts";
import { decodeControl } from "./protocol.ts";
import { openSshSessions } from "./ssh-session.ts";
import type { TerminalKind } from "./tickets.ts";

let t: TestHangar;
let server: http.Server;
let bridge: TerminalBridge;
let origin: string;
let api: Awaited<ReturnType<typeof callerFor>>;
let vmId: string;

beforeAll(async () => {
  t = await createTestHangar();
  api = await callerFor(t.hangar);
  t.hangar.terminals.close();
  server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  bridge = createTerminalBridge({ hangar: t.hangar, hub: t.hangar.consoles, tickets: t.hangar.tickets, allowedOrigins: [origin] });
  server.on("upgrade", (req, socket, head) => bridge.handleUpgrade(req, socket, head));
  const image = await tinyImage(t.hangar);
  const vm = await api.vm.create({ name: "term", imageId: image.id, cpus: 1, memoryMiB: 256 });
  vmId = vm.id;
  const running = await api.vm.start({ id: vm.id });
  await sshWhenReady(t.hangar.driverFor(vm.id), running.sshPort ?? 0, ["true"]);
});

afterAll(async () => {
  bridge.close();
  server.close();
  t.hangar.consoles.closeAll();
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

/** Established TCP connections from this host to the VM's SSH port (host-side truth, from ss). */
async function sshConnections(): Promise<number> {
  const vm = await t.hangar.db.vm.findUniqueOrThrow({ where: { id: vmId } });
  const { stdout } = await execa("ss", ["-tnH", "state", "established", "dport", "=", `:${vm.sshPort ?? 0}`]);
  return stdout.split("\n").filter((line) => line.trim()).length;
}

/** A terminal socket with what it received, as text and control messages. */
async function open(kind: TerminalKind, headers: Record<string, string> = { origin: "" }, caller: typeof api = api) {
  const { path: wsPath } = await caller.terminal.ticket({ vmId, kind });
  const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin: headers.origin || origin } });
  let text = "";
  const controls: unknown[] = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    // Answer "where is the cursor?" as a terminal would; busybox's shell waits for it.
    if (binary && data.includes("\x1b[6n")) ws.send(Buffer.from("\x1b[1;1R"), { binary: true });
    if (binary) text += data.toString("utf8");
    else controls.push(decodeControl(data.toString("utf8")));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const until = async (needle: string | RegExp, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(typeof needle === "string" ? text.includes(needle) : needle.test(text))) {
      if (Date.now() > deadline) throw new Error(`terminal never showed ${String(needle)}; it showed:\n${text.slice(-2000)}`);
      await sleep(50);
    }
  };
  return { ws, text: () => text, controls, until, type: (s: string) => ws.send(Buffer.from(s), { binary: true }) };
}

/** The VM's events of one action, oldest first, as "actor: message". */
async function recordedAs(action: string) {
  const { events } = await api.vm.events({ vmId, limit: 100 });
  return events
    .filter((event) => event.action === action)
    .map((event) => `${event.actor}: ${event.message}`)
    .reverse();
}

/**
 * An RFB client over a display terminal: the greeting, a no-auth handshake, then one full
 * framebuffer update in raw encoding. Returns the screen's size and how many colours it shows.
 */
async function openDisplay(caller: typeof api = api) {
  const { path: wsPath, readOnly } = await caller.terminal.ticket({ vmId, kind: "display" });
  const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin } });
  let received = Buffer.alloc(0);
  const controls: unknown[] = [];
  let closed = false;
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary) received = Buffer.concat([received, data]);
    else controls.push(decodeControl(data.toString("utf8")));
  });
  ws.on("close", () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const read = async (length: number) => {
    await expect.poll(() => received.length >= length || closed, { timeout: 30_000 }).toBe(true);
    if (received.length < length) throw new Error(`the display closed after ${received.length} of ${length} bytes: ${JSON.stringify(controls)}`);
    const bytes = received.subarray(0, length);
    received = received.subarray(length);
    return bytes;
  };
  const send = (bytes: number[] | Buffer) => ws.send(Buffer.from(bytes), { binary: true });
  return { ws, readOnly, controls, read, send, closed: () => closed };
}

async function handshakeAndFrame(display: Awaited<ReturnType<typeof openDisplay>>) {
  expect((await display.read(12)).toString("latin1")).toBe("RFB 003.008\n");
  display.send(Buffer.from("RFB 003.008\n"));
  const types = await display.read(1);
  expect([...(await display.read(types[0] ?? 0))]).toContain(1);
  display.send([1]);
  expect((await display.read(4)).readUInt32BE(0)).toBe(0);
  display.send([1]);
  const init = await display.read(24);
  const width = init.readUInt16BE(0);
  const height = init.readUInt16BE(2);
  expect(init[4]).toBe(32);
  await display.read(init.readUInt32BE(20));
  // SetEncodings: raw only. FramebufferUpdateRequest: the whole screen, not incremental.
  display.send([2, 0, 0, 1, 0, 0, 0, 0]);
  display.send([3, 0, 0, 0, 0, 0, width >> 8, width & 0xff, height >> 8, height & 0xff]);
  const header = await display.read(4);
  expect(header[0]).toBe(0);
  const colours = new Set<number>();
  let pixels = 0;
  for (let rect = 0; rect < header.readUInt16BE(2); rect++) {
    const r = await display.read(12);
    const encoding = r.readInt32BE(8);
    if (encoding !== 0) continue;
    const data = await display.read(r.readUInt16BE(4) * r.readUInt16BE(6) * 4);
    for (let offset = 0; offset < data.length; offset += 4) colours.add(data.readUInt32LE(offset) & 0xffffff);
    pixels += data.length / 4;
  }
  return { width, height, pixels, colours: colours.size };
}

describe("terminal bridge", () => {
  it("refuses an upgrade (403, before anything is attached) for a bad origin or ticket", async () => {
    const status = (wsPath: string, upgradeOrigin?: string, host?: string) =>
      new Promise<number>((resolve) => {
        const headers = { ...(upgradeOrigin ? { origin: upgradeOrigin } : {}), ...(host ? { host } : {}) };
        const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("error", () => undefined);
      });
    const ticket = async (kind: TerminalKind = "console") => (await api.terminal.ticket({ vmId, kind })).ticket;
    const host = new URL(origin).host;
    const good = await ticket();

    // Origins: missing, another host, another port, another scheme. None burns the ticket.
    for (const bad of [undefined, "http://evil.example", `http://${host.replace(/:\d+$/, ":1")}`, `https://${host}`, "null"]) {
      expect(await status(terminalPath(good, vmId, "console"), bad), `origin ${String(bad)}`).toBe(403);
    }
    // A DNS-rebinding page: Origin and Host agree, but name the attacker's host, not Hangar's.
    const port = new URL(origin).port;
    expect(await status(terminalPath(good, vmId, "console"), `http://evil.example:${port}`, `evil.example:${port}`)).toBe(403);
    // Tickets: none, made up, for another VM, for another kind, used once already, expired.
    expect(await status(`${TERMINAL_PATH}?vm=${vmId}&kind=console`, origin)).toBe(403);
    expect(await status(terminalPath("made-up", vmId, "console"), origin)).toBe(403);
    expect(await status(terminalPath(await ticket(), "someothervm", "console"), origin)).toBe(403);
    expect(await status(terminalPath(await ticket("console"), vmId, "shell"), origin)).toBe(403);
    expect(await status(terminalPath(await ticket("shell"), vmId, "console"), origin)).toBe(403);
    expect(bridge.counts()).toEqual({ console: 0, shell: 0, monitor: 0, display: 0, tunnel: 0 });
    expect(t.hangar.consoles.viewerCounts()).toEqual({});
    expect(openSshSessions()).toBe(0);

    expect(await status(terminalPath(good, vmId, "console"), origin)).toBe(101);
    expect(await status(terminalPath(good, vmId, "console"), origin)).toBe(403);
  });

  it("shows the serial console to two viewers, scrollback first, and takes a console login", async () => {
    const first = await open("console");
    await first.until("login:");
    const second = await open("console");
    await second.until("hangar-guest: ssh ready");
    first.type("root\n");
    await first.until("#");
    first.type("uname -a\n");
    await first.until(/Linux term /);
    await second.until(/Linux term /);
    first.ws.close();
    second.ws.close();
    await expect.poll(() => t.hangar.consoles.viewerCounts()).toEqual({});
    // A new viewer after everyone left sees the earlier output again (from serial.log).
    const later = await open("console");
    await later.until(/Linux term /);
    later.ws.close();
  });

  it("opens the qemu monitor for an admin, one terminal at a time", async () => {
    const monitor = await open("monitor");
    await monitor.until("(qemu)");
    monitor.type("info status\n");
    await monitor.until("VM status: running");
    const second = await open("monitor");
    await new Promise<void>((resolve) => second.ws.once("close", () => resolve()));
    expect(second.controls).toContainEqual({ type: "error", message: 'The qemu monitor of VM "term" is open in another terminal; close that one first.' });
    monitor.ws.close();
    await expect.poll(() => bridge.counts().monitor).toBe(0);
    await expect.poll(() => recordedAs("monitor")).toEqual(["admin@test.hangar: Opened the qemu monitor"]);
    const viewer = await callerFor(t.hangar, "viewer");
    await expect(viewer.terminal.ticket({ vmId, kind: "monitor" })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("shows the VM's screen over RFB to several viewers at once, view-only for readers", async () => {
    const first = await openDisplay();
    expect(first.readOnly).toBe(false);
    const second = await openDisplay(await callerFor(t.hangar, "viewer"));
    expect(second.readOnly).toBe(true);
    expect(bridge.counts().display).toBe(2);
    for (const display of [first, second]) {
      const frame = await handshakeAndFrame(display);
      expect(frame.pixels).toBe(frame.width * frame.height);
      // The firmware's text is on the screen: more than one colour.
      expect(frame.colours).toBeGreaterThan(1);
    }
    // A reader's keys never reach qemu; a message the filter cannot size ends the display.
    second.send([4, 1, 0, 0, 0, 0, 0, 0x61]);
    second.send([77, 0, 0, 0]);
    await expect.poll(() => second.closed()).toBe(true);
    expect(second.controls).toContainEqual({ type: "error", message: "A view-only display does not accept RFB message type 77." });
    first.ws.close();
    await expect.poll(() => bridge.counts().display).toBe(0);
    // The reader only watched: the events name the one who could type.
    await expect.poll(() => recordedAs("display")).toEqual(["admin@test.hangar: Opened the display, with keyboard and mouse"]);
  });

  it("refuses a display upgrade for a wrong kind, ticket or origin", async () => {
    const status = (wsPath: string, upgradeOrigin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin: upgradeOrigin } });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("error", () => undefined);
      });
    const ticket = async (kind: TerminalKind) => (await api.terminal.ticket({ vmId, kind })).ticket;
    expect(await status(terminalPath(await ticket("display"), vmId, "display"), "http://evil.example")).toBe(403);
    expect(await status(terminalPath(await ticket("console"), vmId, "display"), origin)).toBe(403);
    expect(await status(terminalPath(await ticket("display"), vmId, "console"), origin)).toBe(403);
    expect(await status(terminalPath(await ticket("display"), "someothervm", "display"), origin)).toBe(403);
    expect(await status(terminalPath("made-up", vmId, "display"), origin)).toBe(403);
    expect(bridge.counts().display).toBe(0);
  });

  it("tunnels raw bytes to the VM's SSH port for a token's ticket without Origin, and refuses a session's", async () => {
    const principal = { userId: (await t.hangar.db.user.findFirstOrThrow()).id, email: "admin@test.hangar", role: "admin" as const };
    const cli = createCaller({ hangar: t.hangar, transport: IN_PROCESS, principal: { ...principal, via: "token", tokenName: "cli" }, actor: "cli" });
    const connect = (wsPath: string) =>
      new Promise<{ status: number; ws?: WebSocket }>((resolve) => {
        const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`);
        ws.on("unexpected-response", (_req, res) => resolve({ status: res.statusCode ?? 0 }));
        ws.on("open", () => resolve({ status: 101, ws }));
        ws.on("error", () => undefined);
      });
    // A session's ticket without Origin is refused, and still good from Hangar's own page.
    const session = await api.terminal.ticket({ vmId, kind: "tunnel" });
    expect((await connect(session.path)).status).toBe(403);
    const { path: tokenPath } = await cli.terminal.ticket({ vmId, kind: "tunnel" });
    const opened = await connect(tokenPath);
    const ws = opened.ws;
    if (!ws) throw new Error(`the tunnel was refused with ${opened.status}`);
    // The guest's SSH server speaks first: its version line comes through unchanged.
    const banner = await new Promise<string>((resolve) => ws.once("message", (data: Buffer) => resolve(data.toString("latin1"))));
    expect(banner).toMatch(/^SSH-2\.0-/);
    expect(bridge.counts().tunnel).toBe(1);
    await expect.poll(() => recordedAs("tunnel")).toEqual(["cli: Opened a tunnel to the VM's SSH port, for the caller's own ssh client"]);
    ws.close();
    await expect.poll(() => bridge.counts().tunnel).toBe(0);
    await expect.poll(() => sshConnections()).toBe(0);
    const fromPage = new WebSocket(`${origin.replace("http", "ws")}${session.path}`, { headers: { origin } });
    await new Promise<void>((resolve, reject) => {
      fromPage.once("open", () => resolve());
      fromPage.once("error", reject);
    });
    fromPage.close();
    // A viewer may not tunnel.
    const viewer = await callerFor(t.hangar, "viewer");
    await expect(viewer.terminal.ticket({ vmId, kind: "tunnel" })).rejects.toMatchObject({ code: "FORBIDDEN", message: "Viewers cannot open SSH tunnels." });
  });

  it("opens an SSH shell with a PTY, reports the exit code, and leaves no session behind", async () => {
    const shell = await open("shell");
    shell.ws.send(JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
    // Hangar's own account, not root (cloud images refuse root logins).
    await shell.until(/hangar@term:\S*\$ /);
    shell.type("whoami; echo $((6*7)); stty size\n");
    await shell.until(/hangar\r\n42\r\n30 100/);
    shell.type("exit 7\n");
    await new Promise<void>((resolve) => shell.ws.once("close", () => resolve()));
    expect(shell.controls).toContainEqual({ type: "exit", code: 7 });
    const another = await open("shell");
    await another.until("$ ");
    expect(await sshConnections()).toBe(1);
    another.ws.close();
    await expect.poll(() => openSshSessions()).toBe(0);
    await expect.poll(() => sshConnections()).toBe(0);
    await expect.poll(() => bridge.counts()).toEqual({ console: 0, shell: 0, monitor: 0, display: 0, tunnel: 0 });
    // The guest's side agrees: no dropbear session process is left but the one running this.
    const sessions = await api.vm.exec({ id: vmId, command: ["sh", "-c", "cat /proc/[0-9]*/comm | grep -cx dropbear"] });
    expect(Number(sessions.stdout.trim())).toBe(2);
  });

  it("records in the VM's events the terminals and commands that can change it, under their user, and not a console only watched, and sends them live", async () => {
    const since = new Date();
    const published: string[] = [];
    const unsubscribe = t.hangar.bus.subscribe((change) => published.push(change.eventId));
    const viewer = await callerFor(t.hangar, "viewer");
    const watched = await open("console", undefined, viewer);
    await watched.until("login:");
    watched.type("\n");
    watched.ws.close();
    const typedIn = await open("console");
    await typedIn.until("login:");
    const shown = typedIn.text().length;
    typedIn.type("\n");
    typedIn.type("\n");
    // Whatever the console was at (a login or a shell), it answers the keys with a new prompt.
    await expect.poll(() => typedIn.text().length).toBeGreaterThan(shown);
    typedIn.ws.close();
    const shell = await open("shell");
    await shell.until("$ ");
    shell.ws.close();
    await api.vm.exec({ id: vmId, command: ["sh", "-c", "echo the-secret-argument"] });
    mkdirSync(path.join(t.env.syncRoot, "audited"), { recursive: true });
    await api.vm.sync({ id: vmId, from: "audited/", to: "/tmp/audited" });

    const me = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "admin@test.hangar" } });
    const recorded = async () =>
      (await api.vm.events({ vmId, limit: 50 })).events
        .filter((event) => event.createdAt >= since)
        .map(({ actor, userId, action, ok, message }) => ({ actor, userId, action, ok, message }))
        .reverse();
    const mine = { actor: "admin@test.hangar", userId: me.id, ok: true };
    await expect.poll(recorded).toEqual([
      { ...mine, action: "console", message: "Typed into the serial console" },
      { ...mine, action: "shell", message: "Opened a shell as hangar" },
      { ...mine, action: "exec", message: 'Ran "sh" as hangar: exit 0' },
      { ...mine, action: "sync", message: "Copied audited/ into /tmp/audited as hangar" },
    ]);
    // Open VM pages and `hangar events --follow` get each as it is recorded, though no state moved.
    const ids = (await api.vm.events({ vmId, limit: 50 })).events.filter((event) => event.createdAt >= since).map((event) => event.id);
    await expect.poll(() => ids.filter((id) => !published.includes(id))).toEqual([]);
    unsubscribe();
  });

  it("grows the disk of the running VM, and the guest sees the new size at once", async () => {
    const sectors = async () => Number((await api.vm.exec({ id: vmId, command: ["cat", "/sys/block/vda/size"] })).stdout.trim());
    const before = await sectors();
    const grownGiB = Math.ceil((before * 512) / 1024 ** 3) + 1;
    expect((await api.vm.resizeDisk({ id: vmId, diskGiB: grownGiB }))?.virtualBytes).toBe(grownGiB * 1024 ** 3);
    await expect.poll(sectors).toBe((grownGiB * 1024 ** 3) / 512);
    expect((await api.vm.get({ id: vmId })).state).toBe("Running");
  });

  it("runs commands and syncs files for services, and refuses a VM that is not running", async () => {
    const result = await api.vm.exec({ id: vmId, command: ["sh", "-c", "echo out; echo err >&2; exit 4"] });
    expect(result).toMatchObject({ stdout: "out\n", stderr: "err\n", exitCode: 4, truncated: false });
    const big = await api.vm.exec({ id: vmId, command: ["sh", "-c", "head -c 2000000 /dev/zero | tr '\\\\0' x"] });
    expect(big.truncated).toBe(true);
    const dir = path.join(t.env.syncRoot, "site");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "index.html"), "hello from the host\n");
    await api.vm.sync({ id: vmId, from: "site/", to: "/tmp/site" });
    expect((await api.vm.exec({ id: vmId, command: ["cat", "/tmp/site/index.html"] })).stdout).toBe("hello from the host\n");
    await expect(api.vm.sync({ id: vmId, from: "../hangar.db", to: "/tmp/x" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    // Called one at a time: a refusal made early would reject before anything awaits it.
    const refusals: [() => Promise<unknown>, RegExp][] = [
      [() => api.vm.exec({ id: vmId, command: [] }), /at least the program/],
      [() => api.vm.exec({ id: vmId, command: ["echo", "a\0b"] }), /NUL/],
      [() => api.vm.exec({ id: vmId, command: ["true"], timeoutSec: 0 }), /at least 1/],
      [() => api.vm.sync({ id: vmId, from: "site/", to: "tmp/relative" }), /absolute path/],
      [() => api.vm.sync({ id: vmId, from: "site/", to: "/tmp/$(reboot)" }), /absolute path/],
      [() => api.vm.sync({ id: vmId, from: "site\n/", to: "/tmp/x" }), /one line/],
      [() => api.vm.sync({ id: vmId, from: "site/", to: "/tmp/x", chown: "Root;" }), /user:group/],
    ];
    for (const [refused, message] of refusals) await expect(refused()).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(message) });
    expect((await api.vm.exec({ id: vmId, command: ["ls", "/tmp"] })).stdout).not.toMatch(/relative|reboot|^x$/m);
    await api.vm.stop({ id: vmId, timeoutSec: 0 });
    await expect(api.vm.exec({ id: vmId, command: ["true"] })).rejects.toMatchObject({ code: "PRECONDITION_FAILED" });
    await expect(api.terminal.ticket({ vmId, kind: "shell" })).rejects.toMatchObject({ code: "PRECONDITION_FAILED" });
    await expect(api.terminal.ticket({ vmId, kind: "display" })).rejects.toMatchObject({ code: "PRECONDITION_FAILED" });
  });

  it("ends a terminal once its token is revoked, and a writable one once its user may no longer control the VM", async () => {
    const keeper = await callerFor(t.hangar, "admin", "keeper@test.hangar");
    const user = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "keeper@test.hangar" } });
    /** A console opened with `caller`'s ticket, and what it was told as it closed. */
    const openConsole = async (caller: typeof api, headers: Record<string, string>) => {
      const { path: wsPath } = await caller.terminal.ticket({ vmId, kind: "console" });
      const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers });
      const said: unknown[] = [];
      let closed = false;
      ws.on("message", (data: Buffer, binary: boolean) => binary || said.push(decodeControl(data.toString("utf8"))));
      ws.on("close", () => (closed = true));
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      return { said, closed: () => closed };
    };

    const made = await keeper.token.create({ name: "cli-console" });
    const principal = await authenticate(t.hangar.db, t.hangar.auth, { authorization: `Bearer ${made.token}` });
    if (!principal) throw new Error("the new token did not authenticate");
    const viaToken = await openConsole(createCaller({ hangar: t.hangar, transport: IN_PROCESS, principal, actor: "token cli-console" }), {});
    await keeper.token.revoke({ id: made.id });
    await expect.poll(() => viaToken.closed()).toBe(true);
    expect(viaToken.said).toContainEqual({ type: "error", message: "The API token this terminal was opened with was revoked or has expired." });

    const typing = await openConsole(keeper, { origin });
    await api.user.update({ id: user.id, role: "viewer" });
    await expect.poll(() => typing.closed()).toBe(true);
    expect(typing.said).toContainEqual({ type: "error", message: "You may no longer control this VM; open the terminal again to watch it." });
  });

  it("keeps a console viewer across a start and a stop of the VM, saying when it is not running", async () => {
    const viewer = await open("console");
    await viewer.until(STOPPED_NOTICE);
    const before = viewer.text().length;
    await api.vm.start({ id: vmId });
    await expect.poll(() => viewer.controls).toContainEqual({ type: "status", state: "Running" });
    await expect.poll(() => viewer.text().slice(before), { timeout: 60_000 }).toMatch(/hangar-guest: ssh ready[^]*login:/);
    // A display, unlike the console, ends with the VM and says so.
    const display = await openDisplay();
    await handshakeAndFrame(display);
    await api.vm.stop({ id: vmId, timeoutSec: 0 });
    await expect.poll(() => display.closed()).toBe(true);
    expect(display.controls).toContainEqual({ type: "error", message: expect.stringMatching(/^The VM's display closed/) });
    await expect.poll(() => viewer.controls).toContainEqual({ type: "status", state: "Stopped" });
    await expect.poll(() => viewer.text().slice(before)).toContain(STOPPED_NOTICE);
    viewer.ws.close();
    await expect.poll(() => t.hangar.consoles.viewerCounts()).toEqual({});
  });
});

describe("withoutCursorReports", () => {
  it("drops the cursor position reports every viewer's terminal sends, keeping the keys around them", () => {
    expect(withoutCursorReports(Buffer.from("ls\x1b[24;17R -l\r")).toString("latin1")).toBe("ls -l\r");
    expect(withoutCursorReports(Buffer.from("\x1b[1;1R\x1b[2;3R")).length).toBe(0);
    const keys = Buffer.from("\x1b[A\x1b[3~x");
    expect(withoutCursorReports(keys)).toBe(keys);
  });
});
