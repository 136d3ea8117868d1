/**
 * A test host outside this one: a network namespace of its own, joined to this host by a
 * veth pair on a /30 of 10.213.0.0/16, with a web server inside. Traffic to it leaves this
 * host's own addresses, as a guest's outbound connection to the world would. Needs root.
 */
import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";

export interface OutsideHost {
  address: string;
  port: number;
  /** What its web server answers to every request. */
  greeting: string;
  close(): Promise<void>;
}

const ip = (...args: string[]) => execa("ip", args);

export async function startOutsideHost(): Promise<OutsideHost> {
  const n = randomInt(1, 16_000);
  const name = `hgt${n}`;
  const subnet = `10.213.${Math.floor(n / 64)}.${(n % 64) * 4}`;
  const base = subnet.split(".").map(Number);
  const hostSide = `${base[0]}.${base[1]}.${base[2]}.${(base[3] ?? 0) + 1}`;
  const address = `${base[0]}.${base[1]}.${base[2]}.${(base[3] ?? 0) + 2}`;
  const port = 8099;
  const greeting = `hello from ${name}`;
  await ip("netns", "add", name);
  await ip("link", "add", `${name}a`, "type", "veth", "peer", "name", `${name}b`);
  await ip("link", "set", `${name}b`, "netns", name);
  await ip("addr", "add", `${hostSide}/30`, "dev", `${name}a`);
  await ip("link", "set", `${name}a`, "up");
  await ip("netns", "exec", name, "ip", "addr", "add", `${address}/30`, "dev", `${name}b`);
  await ip("netns", "exec", name, "ip", "link", "set", `${name}b`, "up");
  const script = `require("node:http").createServer((q, r) => r.end(${JSON.stringify(`${greeting}\n`)})).listen(${port}, ${JSON.stringify(address)})`;
  const server = execa("ip", ["netns", "exec", name, process.execPath, "-e", script], { reject: false });
  for (let i = 0; i < 100; i++) {
    const answer = await fetch(`http://${address}:${port}/`).then(
      (r) => r.text(),
      () => "",
    );
    if (answer.startsWith(greeting)) break;
    await sleep(50);
  }
  return {
    address,
    port,
    greeting,
    close: async () => {
      server.kill("SIGKILL");
      await server;
      await ip("link", "del", `${name}a`).catch(() => undefined);
      await ip("netns", "del", name).catch(() => undefined);
    },
  };
}
