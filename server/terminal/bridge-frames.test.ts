// Malformed WebSocket frames, written byte by byte over TCP against the real bridge: each
// closes its own connection with the matching close code, none becomes an uncaught
// exception, and the bridge keeps serving. A ticket whose grant ended before it was redeemed
// (its token revoked, its user demoted) is refused at the upgrade.
import { randomBytes } from "node:crypto";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createCaller } from "../api/root.ts";
import { IN_PROCESS } from "../api/trpc.ts";
import { authenticate } from "../auth/principal.ts";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";
import { MAX_FRAME_BYTES, createTerminalBridge, type TerminalBridge } from "./bridge.ts";

let t: TestHangar;
let server: http.Server;
let bridge: TerminalBridge;
let port: number;
let origin: string;
let api: Awaited<ReturnType<typeof callerFor>>;
let vmId: string;
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

beforeAll(async () => {
  process.on("uncaughtException", onUncaught);
  const fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  api = await callerFor(t.hangar);
  t.hangar.terminals.close();
  server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  bridge = createTerminalBridge({ hangar: t.hangar, hub: t.hangar.consoles, tickets: t.hangar.tickets, allowedOrigins: [origin] });
  server.on("upgrade", (req, socket, head) => bridge.handleUpgrade(req, socket, head));
  const image = await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } });
  vmId = (await api.vm.create({ name: "frames", imageId: image.id, cpus: 1, memoryMiB: 128 })).id;
});

afterAll(async () => {
  process.off("uncaughtException", onUncaught);
  bridge.close();
  server.close();
  t.hangar.consoles.closeAll();
  await t.cleanup();
});

/** A client frame: FIN + opcode, masked unless told otherwise, with the real or a claimed length. */
function frame(opcode: number, payload: Buffer, options: { masked?: boolean; fin?: boolean; rsv?: number; claimedLength?: bigint } = {}): Buffer {
  const { masked = true, fin = true, rsv = 0 } = options;
  const length = options.claimedLength ?? BigInt(payload.length);
  const head = [(fin ? 0x80 : 0) | rsv | opcode];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65536n) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(Number(length));
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(length);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), extended, payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
  return Buffer.concat([Buffer.from(head), extended, mask, body]);
}

const closeFrame = (code: number) => {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return frame(0x8, payload);
};

/** The close code of the first close frame among the server's frames, or undefined. */
function closeCode(bytes: Buffer): number | undefined {
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] ?? 0) & 0x0f;
    let length = (bytes[at + 1] ?? 0) & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(start));
      start += 8;
    }
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(start) : 1005;
    at = start + length;
  }
  return undefined;
}

/**
 * Opens a console terminal over raw TCP, writes `frames` (in the same packet as the upgrade
 * request when `withUpgrade`), and returns the status line and the close code the server sent
 * before it closed the connection.
 */
async function exchange(frames: Buffer[], options: { withUpgrade?: boolean } = {}): Promise<{ status: string; code: number | undefined }> {
  const { path } = await api.terminal.ticket({ vmId, kind: "console" });
  const socket = net.connect(port, "127.0.0.1");
  const request = Buffer.from(
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
      "Sec-WebSocket-Version: 13",
      `Origin: ${origin}`,
      "",
      "",
    ].join("\r\n"),
  );
  const received: Buffer[] = [];
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => undefined);
  socket.on("data", (chunk) => received.push(chunk));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  if (options.withUpgrade) socket.write(Buffer.concat([request, ...frames]));
  else {
    socket.write(request);
    // Frames go after the 101 answer, so they reach the upgraded socket.
    await new Promise<void>((resolve) => {
      const check = () => {
        if (Buffer.concat(received).includes("\r\n\r\n")) {
          socket.off("data", check);
          resolve();
        }
      };
      socket.on("data", check);
      check();
    });
    for (const bytes of frames) socket.write(bytes);
  }
  await closed;
  const all = Buffer.concat(received);
  const headEnd = all.indexOf("\r\n\r\n");
  return { status: all.subarray(0, all.indexOf("\r\n")).toString(), code: closeCode(all.subarray(headEnd + 4)) };
}

describe("malformed WebSocket frames", () => {
  afterEach(() => expect(uncaught).toEqual([]));

  const cases: [string, Buffer[], number][] = [
    ["an unmasked client frame", [frame(0x2, Buffer.from("abc"), { masked: false })], 1002],
    ["a reserved data opcode", [frame(0x3, Buffer.from("x"))], 1002],
    ["a reserved control opcode", [frame(0xb, Buffer.alloc(0))], 1002],
    ["RSV bits without an extension", [frame(0x2, Buffer.from("x"), { rsv: 0x40 })], 1002],
    ["a fragmented ping", [frame(0x9, Buffer.from("p"), { fin: false })], 1002],
    ["a continuation with nothing to continue", [frame(0x0, Buffer.from("x"))], 1002],
    ["a payload over the frame limit", [frame(0x2, Buffer.alloc(0), { claimedLength: BigInt(MAX_FRAME_BYTES + 1) })], 1009],
    ["a 64-bit length with its top bit set", [frame(0x2, Buffer.alloc(0), { claimedLength: 2n ** 63n })], 1009],
    ["invalid UTF-8 in a text frame", [frame(0x1, Buffer.from([0xc3, 0x28, 0xff]))], 1007],
    ["a lone surrogate encoded in a text frame", [frame(0x1, Buffer.from([0xed, 0xa0, 0x80]))], 1007],
    ["an invalid close code", [closeFrame(1005)], 1002],
  ];

  it.each(cases)("closes on %s with the matching code", async (_label, frames, expected) => {
    const result = await exchange(frames);
    expect(result.status).toBe("HTTP/1.1 101 Switching Protocols");
    expect(result.code).toBe(expected);
  });

  it("handles a malformed frame sent in the same packet as the upgrade request", async () => {
    expect(await exchange([frame(0x2, Buffer.from("abc"), { masked: false })], { withUpgrade: true })).toEqual({
      status: "HTTP/1.1 101 Switching Protocols",
      code: 1002,
    });
  });

  it("ignores frames after a close frame, garbage included", async () => {
    const result = await exchange([closeFrame(1000), frame(0x2, Buffer.from("late")), frame(0x3, Buffer.from("x"), { masked: false }), randomBytes(64)]);
    expect(result.code).toBe(1000);
  });

  it("survives peers that reset mid-handshake or mid-frame, then keeps serving", async () => {
    for (const partial of [Buffer.from("GET /ws/terminal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"), frame(0x2, randomBytes(1000)).subarray(0, 10)]) {
      const socket = net.connect(port, "127.0.0.1");
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write(partial);
      socket.resetAndDestroy();
    }
    const ws = new WebSocket(`${origin.replace("http", "ws")}${(await api.terminal.ticket({ vmId, kind: "console" })).path}`, { headers: { origin } });
    const first = await new Promise<string>((resolve, reject) => {
      ws.once("message", (data: Buffer) => resolve(data.toString("utf8")));
      ws.once("error", reject);
    });
    expect(JSON.parse(first)).toEqual({ type: "status", state: "Stopped" });
    ws.close();
    await expect.poll(() => bridge.counts()).toEqual({ console: 0, shell: 0, monitor: 0, display: 0, tunnel: 0 });
  });
});

describe("a ticket whose grant ended before it was redeemed", () => {
  /** The status line and body the upgrade was answered with, or "open". */
  function upgrade(path: string, headers: Record<string, string>): Promise<string> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${origin.replace("http", "ws")}${path}`, { headers });
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve(`${res.statusCode ?? 0} ${body}`));
      });
      ws.on("open", () => {
        ws.close();
        resolve("open");
      });
    });
  }

  it("is refused, not opened until the next sweep, once its token is revoked or its user may no longer control the VM", async () => {
    const late = await callerFor(t.hangar, "admin", "late@test.hangar");
    const user = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "late@test.hangar" } });
    const made = await late.token.create({ name: "revoked-before-use" });
    const principal = await authenticate(t.hangar.db, t.hangar.auth, { authorization: `Bearer ${made.token}` });
    if (!principal) throw new Error("the new token did not authenticate");
    const viaToken = createCaller({ hangar: t.hangar, transport: IN_PROCESS, principal, actor: "token revoked-before-use" });
    const { path } = await viaToken.terminal.ticket({ vmId, kind: "console" });
    await late.token.revoke({ id: made.id });
    expect(await upgrade(path, {})).toBe("403 The API token this terminal was opened with was revoked or has expired.");

    const typing = await late.terminal.ticket({ vmId, kind: "console" });
    expect(typing.readOnly).toBe(false);
    await api.user.update({ id: user.id, role: "viewer" });
    expect(await upgrade(typing.path, { origin })).toBe("403 You may no longer control this VM; open the terminal again to watch it.");
  });
});
