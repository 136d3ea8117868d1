// The display pipe against a real unix socket standing in for qemu's VNC server.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HIGH_WATER } from "./console-hub.ts";
import { pipeDisplay } from "./display-pipe.ts";

const dirs: string[] = [];
const servers: net.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A VNC-server stand-in: the host side of one connection, and the client socket the pipe reads. */
async function screenPair() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hangar-display-"));
  dirs.push(dir);
  const socketPath = path.join(dir, "vnc.sock");
  let accept: (socket: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  const server = net.createServer((socket) => accept(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const screen = net.createConnection(socketPath);
  await new Promise<void>((resolve, reject) => {
    screen.once("connect", () => resolve());
    screen.once("error", reject);
  });
  const qemu = await accepted;
  let fromViewer = Buffer.alloc(0);
  qemu.on("data", (bytes: Buffer) => (fromViewer = Buffer.concat([fromViewer, bytes])));
  return { screen, qemu, fromViewer: () => fromViewer };
}

function fakePeer() {
  const peer = {
    sent: 0,
    queued: 0,
    closedWith: undefined as string | undefined,
    sendBytes: (bytes: Buffer) => {
      peer.sent += bytes.length;
    },
    bufferedAmount: () => peer.queued,
    close: (message?: string) => {
      peer.closedWith = message ?? "";
    },
  };
  return peer;
}

describe("display pipe", () => {
  it("stops reading the VNC socket while the browser is behind, and carries on once it caught up", async () => {
    const { screen, qemu } = await screenPair();
    const peer = fakePeer();
    const display = pipeDisplay(screen, peer, { readOnly: false, drainCheckMs: 5 });
    peer.queued = HIGH_WATER + 1;
    qemu.write(Buffer.alloc(1024));
    await expect.poll(() => peer.sent).toBe(1024);
    expect(screen.isPaused()).toBe(true);
    qemu.write(Buffer.alloc(2048));
    peer.queued = 0;
    await expect.poll(() => screen.isPaused()).toBe(false);
    await expect.poll(() => peer.sent).toBe(3072);
    display.close();
  });

  it("passes a controller's bytes unchanged and a reader's through the view-only filter", async () => {
    const handshake = Buffer.from("RFB 003.008\n\x01\x01");
    const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
    const request = Buffer.from([3, 1, 0, 0, 0, 0, 2, 208, 1, 144]);

    const controller = await screenPair();
    const writer = pipeDisplay(controller.screen, fakePeer(), { readOnly: false });
    writer.write(Buffer.concat([handshake, key, request]));
    await expect.poll(() => controller.fromViewer()).toEqual(Buffer.concat([handshake, key, request]));
    writer.close();

    const reader = await screenPair();
    const viewer = pipeDisplay(reader.screen, fakePeer(), { readOnly: true });
    viewer.write(Buffer.concat([handshake, key, request]));
    await expect.poll(() => reader.fromViewer()).toEqual(Buffer.concat([handshake, request]));
    viewer.close();
  });

  it("tells the browser when the VM's side closes, and not when the browser left first", async () => {
    const { screen, qemu } = await screenPair();
    const peer = fakePeer();
    pipeDisplay(screen, peer, { readOnly: false });
    qemu.destroy();
    await expect.poll(() => peer.closedWith).toMatch(/display closed/);

    const second = await screenPair();
    const left = fakePeer();
    pipeDisplay(second.screen, left, { readOnly: false }).close();
    await expect.poll(() => second.screen.destroyed).toBe(true);
    expect(left.closedWith).toBeUndefined();
  });
});
