/**
 * The serial console through the WebSocket bridge vs a direct connection to the same
 * qemu serial socket, in the same run, in alternating rounds: keystroke echo round trip
 * (median of many single keystrokes at a shell prompt) and output throughput (`cat` of a
 * 1 MB file). Prints both ratios of the medians (goals: echo at most 1.3x, throughput at
 * least 0.8x).
 *
 * Then ssh through Hangar (the user's own ssh with ProxyCommand `hangar proxy`, over the
 * tunnel terminal of a real Hangar HTTP server) vs ssh straight to the VM's forwarded
 * port: echo round trip in two interactive shells open side by side, keystrokes taking
 * turns, and `cat` of 10 MB (timed from a marker the guest prints, so ssh's and the CLI's
 * start-up are not counted). Same goals.
 *
 *   npx tsx bench/terminal.ts
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import WebSocket from "ws";
import { sshOptions } from "../server/driver/qemu/manager.ts";
import { vmFiles } from "../server/driver/qemu/paths.ts";
import { createHttpServer } from "../server/http-server.ts";
import { median, runBench } from "./setup.ts";

const KEYSTROKES = 60;
const ROUNDS = 3;
/** Keystrokes typed, and not counted, before the ssh echo is measured: each side's first ones. */
const WARM_UP = 10;
const FILE_BYTES = 1_000_000;
const SSH_FILE_BYTES = 10_000_000;
const LAUNCHER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "hangar.mjs");

/** A byte pipe to the console: write, and wait for text to appear. */
interface Pipe {
  write(text: string): void;
  /** Resolves once `needle` has arrived; the text up to it is consumed. */
  waitFor(needle: string, timeoutMs?: number): Promise<void>;
  /** Forgets what arrived so far (a stale prompt must not count as an echo). */
  clear(): void;
  received(): number;
  close(): void;
}

function pipeOver(send: (text: string) => void, subscribe: (onBytes: (b: Buffer) => void) => void, close: () => void): Pipe {
  let text = "";
  let total = 0;
  let waiter: { needle: string; resolve: () => void } | undefined;
  const check = () => {
    const at = waiter ? text.indexOf(waiter.needle) : -1;
    if (!waiter || at < 0) return;
    text = text.slice(at + waiter.needle.length);
    const done = waiter;
    waiter = undefined;
    done.resolve();
  };
  subscribe((bytes) => {
    total += bytes.length;
    text = (text + bytes.toString("latin1")).slice(-4096);
    check();
  });
  return {
    write: send,
    waitFor: (needle, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${needle}" on the console`)), timeoutMs);
        waiter = { needle, resolve: () => (clearTimeout(timer), resolve()) };
        check();
      }),
    clear: () => (text = ""),
    received: () => total,
    close,
  };
}

/** A fresh prompt: the output of arithmetic typed now, never found in the scrollback. */
async function freshPrompt(pipe: Pipe, prompt = "# "): Promise<void> {
  const nonce = Math.floor(Math.random() * 1e9);
  pipe.write(`echo R$((${nonce}+1))\n`);
  await pipe.waitFor(`R${nonce + 1}`);
  await pipe.waitFor(prompt);
  await sleep(50);
  pipe.clear();
}

const keyFor = (i: number) => String.fromCharCode(97 + (i % 26));

/** One keystroke's echo round trip, in ms. */
async function echoOnce(pipe: Pipe, key: string): Promise<number> {
  const started = performance.now();
  const echoed = pipe.waitFor(key);
  pipe.write(key);
  await echoed;
  return performance.now() - started;
}

async function echoTimes(pipe: Pipe): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < KEYSTROKES; i++) times.push(await echoOnce(pipe, keyFor(i)));
  return times;
}

async function measure(pipe: Pipe) {
  await freshPrompt(pipe);
  const times = await echoTimes(pipe);
  // Ctrl-U: drop the typed letters.
  pipe.write("\u0015");
  await freshPrompt(pipe);
  const before = pipe.received();
  const started = performance.now();
  const done = pipe.waitFor("DONE-2");
  pipe.write("cat /tmp/big; echo DONE-$((1+1))\n");
  await done;
  const seconds = (performance.now() - started) / 1000;
  return { echoMs: median(times), bytesPerSecond: (pipe.received() - before) / seconds };
}

runBench("terminal", async ({ hangar, api, imageId }) => {
  const vm = await api.vm.create({ name: "bench-term", imageId, cpus: 1, memoryMiB: 256 });
  await api.vm.start({ id: vm.id });
  for (;;) {
    const ok = await api.vm
      .exec({ id: vm.id, command: ["sh", "-c", `head -c ${FILE_BYTES} /dev/zero | tr '\\0' a | fold -w 99 > /tmp/big`] })
      .catch(() => undefined);
    if (ok?.exitCode === 0) break;
    await sleep(200);
  }

  // A real Hangar HTTP server (tRPC for the CLI, the terminal bridge). Its port is known only
  // now: Hangar answers to it and takes terminals from it (both lists are read by reference).
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hangar.env.publicOrigins.push(origin);
  hangar.env.allowedOrigins.push(origin);
  createHttpServer({ hangar, dev: false, pages: { handle: async (_q, r) => void r.end(), handleUpgrade: async (_q, sock) => void sock.destroy() } }, server);

  /** Straight to qemu's serial socket; the hub holds it only while someone watches. */
  async function directRound() {
    if (Object.keys(hangar.consoles.viewerCounts()).length > 0) throw new Error("the hub still holds the serial socket");
    const serial = net.createConnection(vmFiles(hangar.env.stateDir, vm.id).serialSocket);
    await new Promise<void>((resolve) => serial.once("connect", () => resolve()));
    const pipe = pipeOver(
      (t) => serial.write(t),
      (on) => serial.on("data", on),
      () => serial.destroy(),
    );
    try {
      return await measure(pipe);
    } finally {
      pipe.close();
    }
  }

  /** Through the bridge: a real HTTP server, a ticket, a WebSocket, the hub. */
  async function bridgeRound() {
    const { path: wsPath } = await api.terminal.ticket({ vmId: vm.id, kind: "console" });
    const ws = new WebSocket(`${origin.replace("http", "ws")}${wsPath}`, { headers: { origin } });
    const pipe = pipeOver(
      (t) => ws.send(Buffer.from(t), { binary: true }),
      (on) => ws.on("message", (data: Buffer, binary: boolean) => binary && on(data)),
      () => ws.close(),
    );
    await new Promise<void>((resolve) => ws.once("open", () => resolve()));
    try {
      return await measure(pipe);
    } finally {
      pipe.close();
      while (Object.keys(hangar.consoles.viewerCounts()).length > 0) await sleep(20);
    }
  }

  // Log in once, directly; the shell then stays logged in for every round.
  const login = net.createConnection(vmFiles(hangar.env.stateDir, vm.id).serialSocket);
  const loginPipe = pipeOver(
    (t) => login.write(t),
    (on) => login.on("data", on),
    () => login.destroy(),
  );
  await new Promise<void>((resolve) => login.once("connect", () => resolve()));
  loginPipe.write("\n");
  await loginPipe.waitFor("login:");
  loginPipe.write("root\n");
  await loginPipe.waitFor("# ");
  loginPipe.close();
  await sleep(200);

  // Alternate, so drift in the emulated guest's speed falls on both alike.
  const direct: Awaited<ReturnType<typeof measure>>[] = [];
  const through: Awaited<ReturnType<typeof measure>>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    direct.push(await directRound());
    through.push(await bridgeRound());
    console.log(
      `round ${round + 1}: echo direct ${direct[round]?.echoMs.toFixed(2)} ms, bridge ${through[round]?.echoMs.toFixed(2)} ms; output direct ${((direct[round]?.bytesPerSecond ?? 0) / 1e6).toFixed(3)} MB/s, bridge ${((through[round]?.bytesPerSecond ?? 0) / 1e6).toFixed(3)} MB/s`,
    );
  }

  const echo = { direct: median(direct.map((r) => r.echoMs)), bridge: median(through.map((r) => r.echoMs)) };
  const output = { direct: median(direct.map((r) => r.bytesPerSecond)), bridge: median(through.map((r) => r.bytesPerSecond)) };
  console.log(`echo round trip median: direct ${echo.direct.toFixed(2)} ms, bridge ${echo.bridge.toFixed(2)} ms`);
  console.log(`throughput (cat ${FILE_BYTES / 1e6} MB): direct ${(output.direct / 1e6).toFixed(3)} MB/s, bridge ${(output.bridge / 1e6).toFixed(3)} MB/s`);
  console.log(`ratios: echo ${(echo.bridge / echo.direct).toFixed(2)}x (goal <= 1.3), throughput ${(output.bridge / output.direct).toFixed(2)}x (goal >= 0.8)`);

  // ssh through Hangar vs ssh straight to the forwarded port.
  const { token } = await api.token.create({ name: "bench-cli" });
  const cliEnv = { ...process.env, HANGAR_URL: origin, HANGAR_TOKEN: token };
  const running = await api.vm.get({ id: vm.id });
  const { privateKeyFile } = await hangar.driverFor(vm.id).identity();
  const user = running.image.loginUser;
  await api.vm.exec({ id: vm.id, command: ["sh", "-c", `head -c ${SSH_FILE_BYTES} /dev/zero | tr '\\0' a | fold -w 99 > /tmp/big10`] });
  const proxyCommand = `'${process.execPath}' '${LAUNCHER}' proxy ${vm.id}`;
  const sshArgs = (through: boolean) => [
    ...sshOptions(running.sshPort ?? 0, privateKeyFile),
    ...(through ? ["-o", `ProxyCommand=${proxyCommand}`] : []),
    `${user}@127.0.0.1`,
  ];

  /** An interactive login over ssh, at a fresh prompt. */
  async function sshShell(through: boolean) {
    const shell = execa("ssh", ["-tt", ...sshArgs(through)], { env: cliEnv, reject: false, buffer: false });
    const pipe = pipeOver(
      (t) => shell.stdin?.write(t),
      (on) => shell.stdout?.on("data", on),
      () => shell.kill(),
    );
    await freshPrompt(pipe, "$ ");
    return {
      pipe,
      end: async () => {
        pipe.write("\u0015exit\n");
        await shell;
      },
    };
  }

  /**
   * Echo in two sessions open side by side, direct and through Hangar, keystrokes taking
   * turns between them after a warm-up of each: drift in the emulated guest's speed and
   * the machine's other work then fall on both alike.
   */
  async function sshEchoRound() {
    const direct = await sshShell(false);
    const through = await sshShell(true);
    const times = { direct: [] as number[], through: [] as number[] };
    for (let i = 0; i < WARM_UP + KEYSTROKES; i++) {
      // A fresh line now and then, so the typed letters never wrap.
      if (i % 30 === 0) {
        for (const side of [direct, through]) {
          side.pipe.write("\u0015");
          await freshPrompt(side.pipe, "$ ");
        }
      }
      const d = await echoOnce(direct.pipe, keyFor(i));
      const t = await echoOnce(through.pipe, keyFor(i));
      if (i < WARM_UP) continue;
      times.direct.push(d);
      times.through.push(t);
    }
    await Promise.all([direct.end(), through.end()]);
    return { direct: median(times.direct), through: median(times.through) };
  }

  /** `cat` of 10 MB, timed from a marker the guest prints before it. */
  async function sshCatRound(through: boolean) {
    const cat = execa("ssh", [...sshArgs(through), `echo START; cat /tmp/big10`], { env: cliEnv, reject: false, buffer: false });
    let started = 0;
    let bytes = 0;
    cat.stdout?.on("data", (chunk: Buffer) => {
      if (started === 0) {
        const at = chunk.indexOf("START\n");
        if (at < 0) return;
        started = performance.now();
        bytes += chunk.length - at - 6;
      } else bytes += chunk.length;
    });
    await cat;
    const seconds = (performance.now() - started) / 1000;
    if (bytes < SSH_FILE_BYTES) throw new Error(`ssh ${through ? "through Hangar" : "direct"} delivered ${bytes} of ${SSH_FILE_BYTES} bytes`);
    return bytes / seconds;
  }

  const sshEchoes: Awaited<ReturnType<typeof sshEchoRound>>[] = [];
  const sshCats = { direct: [] as number[], through: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    const echo = await sshEchoRound();
    sshEchoes.push(echo);
    sshCats.direct.push(await sshCatRound(false));
    sshCats.through.push(await sshCatRound(true));
    console.log(
      `ssh round ${round + 1}: echo direct ${echo.direct.toFixed(2)} ms, through Hangar ${echo.through.toFixed(2)} ms; cat direct ${((sshCats.direct[round] ?? 0) / 1e6).toFixed(2)} MB/s, through Hangar ${((sshCats.through[round] ?? 0) / 1e6).toFixed(2)} MB/s`,
    );
  }
  server.closeAllConnections();
  server.close();
  const sshEcho = { direct: median(sshEchoes.map((r) => r.direct)), through: median(sshEchoes.map((r) => r.through)) };
  const sshCat = { direct: median(sshCats.direct), through: median(sshCats.through) };
  console.log(`ssh echo round trip median: direct ${sshEcho.direct.toFixed(2)} ms, through Hangar ${sshEcho.through.toFixed(2)} ms`);
  console.log(
    `ssh throughput (cat ${SSH_FILE_BYTES / 1e6} MB): direct ${(sshCat.direct / 1e6).toFixed(2)} MB/s, through Hangar ${(sshCat.through / 1e6).toFixed(2)} MB/s`,
  );
  console.log(
    `ssh ratios: echo ${(sshEcho.through / sshEcho.direct).toFixed(2)}x (goal <= 1.3), throughput ${(sshCat.through / sshCat.direct).toFixed(2)}x (goal >= 0.8)`,
  );

  await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  await api.vm.delete({ id: vm.id });
});
