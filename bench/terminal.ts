/**
 * The serial console through the WebSocket bridge vs a direct connection to the same
 * qemu serial socket, in the same run: keystroke echo round trip (median of many single
 * keystrokes at a shell prompt) and output throughput (`cat` of a 1 MB file). Prints both
 * ratios (goals: echo at most 1.3x, throughput at least 0.8x).
 *
 *   npx tsx bench/terminal.ts
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { vmFiles } from "../server/driver/qemu/paths.ts";
import { runBench } from "./setup.ts";

const KEYSTROKES = 60;
const FILE_BYTES = 1_000_000;

/** A byte pipe to the console: write, and wait for text to appear. */
interface Pipe {
  write(text: string): void;
  waitFor(needle: string, timeoutMs?: number): Promise<void>;
  received(): number;
  close(): void;
}

function pipeOver(send: (text: string) => void, subscribe: (onBytes: (b: Buffer) => void) => void, close: () => void): Pipe {
  let text = "";
  let total = 0;
  const waiters: { needle: string; resolve: () => void }[] = [];
  subscribe((bytes) => {
    total += bytes.length;
    text = (text + bytes.toString("latin1")).slice(-4096);
    for (const waiter of [...waiters]) {
      if (text.includes(waiter.needle)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        text = "";
        waiter.resolve();
      }
    }
  });
  return {
    write: send,
    waitFor: (needle, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${needle}" on the console`)), timeoutMs);
        waiters.push({ needle, resolve: () => (clearTimeout(timer), resolve()) });
      }),
    received: () => total,
    close,
  };
}

async function measure(pipe: Pipe) {
  pipe.write("\n");
  await pipe.waitFor("# ");
  const times: number[] = [];
  for (let i = 0; i < KEYSTROKES; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const started = performance.now();
    const echoed = pipe.waitFor(key);
    pipe.write(key);
    await echoed;
    times.push(performance.now() - started);
  }
  pipe.write("\u0015");
  await sleep(100);
  const before = pipe.received();
  const started = performance.now();
  const done = pipe.waitFor("DONE-2");
  pipe.write("cat /tmp/big; echo DONE-$((1+1))\n");
  await done;
  const seconds = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return { echoMs: times[Math.floor(times.length / 2)] ?? NaN, bytesPerSecond: (pipe.received() - before) / seconds };
}

runBench("terminal", async ({ hangar, api, imageId }) => {
  const vm = await api.vm.create({ name: "bench-term", imageId, cpus: 1, memoryMiB: 256 });
  await api.vm.start({ id: vm.id });
  for (;;) {
    const ok = await api.vm.exec({ id: vm.id, command: ["sh", "-c", `head -c ${FILE_BYTES} /dev/zero | tr '\\0' a | fold -w 99 > /tmp/big`] }).catch(() => undefined);
    if (ok?.exitCode === 0) break;
    await sleep(200);
  }

  // Direct: nobody else holds the serial socket.
  const serial = net.createConnection(vmFiles(hangar.env.stateDir, vm.id).serialSocket);
  await new Promise<void>((resolve) => serial.once("connect", () => resolve()));
  const directPipe = pipeOver((t) => serial.write(t), (on) => serial.on("data", on), () => serial.destroy());
  directPipe.write("\n");
  await directPipe.waitFor("login:");
  directPipe.write("root\n");
  const direct = await measure(directPipe);
  directPipe.close();
  await sleep(200);

  // Through the bridge: a real HTTP server, a ticket, a WebSocket.
  const server = http.createServer();
  server.on("upgrade", (req, socket, head) => hangar.terminals.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { path: wsPath } = await api.terminal.ticket({ vmId: vm.id, kind: "console" });
  const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin } });
  await new Promise<void>((resolve) => ws.once("open", () => resolve()));
  const bridged = pipeOver(
    (t) => ws.send(Buffer.from(t), { binary: true }),
    (on) => ws.on("message", (data: Buffer, binary: boolean) => binary && on(data)),
    () => ws.close(),
  );
  const through = await measure(bridged);
  bridged.close();
  server.close();

  console.log(`echo round trip median: direct ${direct.echoMs.toFixed(2)} ms, bridge ${through.echoMs.toFixed(2)} ms`);
  console.log(`throughput (cat 1 MB): direct ${(direct.bytesPerSecond / 1e6).toFixed(2)} MB/s, bridge ${(through.bytesPerSecond / 1e6).toFixed(2)} MB/s`);
  console.log(`ratios: echo ${(through.echoMs / direct.echoMs).toFixed(2)}x (goal <= 1.3), throughput ${(through.bytesPerSecond / direct.bytesPerSecond).toFixed(2)}x (goal >= 0.8)`);
  await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  await api.vm.delete({ id: vm.id });
});

