/**
 * A minimal client of qemu-guest-agent on its virtio-serial channel: JSON lines like QMP,
 * without a greeting. `guest-sync` first, so stale replies from an earlier client are
 * skipped; a guest without the agent simply never answers, hence the short timeout.
 */
import { randomInt } from "node:crypto";
import net from "node:net";
import { z } from "zod";
import type { GuestInterface } from "../manager.ts";

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const reply = z.object({ return: z.unknown().optional(), error: z.object({ desc: z.string() }).optional() });

/** Runs `commands` in order on the agent at `socketPath`; rejects when it does not answer in time. */
export async function guestAgent(
  socketPath: string,
  commands: { execute: string; arguments?: Record<string, unknown> }[],
  timeoutMs = 3000,
): Promise<unknown[]> {
  const socket = net.createConnection(socketPath);
  socket.setEncoding("utf8");
  let buffer = "";
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) lines.push(line);
    }
    wake?.();
  });
  socket.on("error", (error) => {
    failure = error;
    wake?.();
  });
  socket.on("close", () => {
    failure ??= new Error("the guest agent channel closed");
    wake?.();
  });
  const timer = setTimeout(() => {
    failure ??= new Error(`the guest agent did not answer within ${timeoutMs} ms`);
    wake?.();
  }, timeoutMs);

  async function nextReply(): Promise<z.infer<typeof reply>> {
    for (;;) {
      const line = lines.shift();
      if (line !== undefined) {
        const parsed = reply.safeParse(parseJson(line));
        if (parsed.success) return parsed.data;
        continue;
      }
      if (failure) throw failure;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  try {
    const token = randomInt(1, 2 ** 31);
    socket.write(`${JSON.stringify({ execute: "guest-sync", arguments: { id: token } })}\n`);
    while ((await nextReply()).return !== token);
    const results: unknown[] = [];
    for (const command of commands) {
      socket.write(`${JSON.stringify(command)}\n`);
      const answer = await nextReply();
      if (answer.error) throw new Error(`${command.execute}: ${answer.error.desc}`);
      results.push(answer.return);
    }
    return results;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

const agentInterfaces = z.array(
  z.object({
    name: z.string(),
    "hardware-address": z.string().optional(),
    "ip-addresses": z.array(z.object({ "ip-address-type": z.enum(["ipv4", "ipv6"]), "ip-address": z.string(), prefix: z.number().int() })).optional(),
  }),
);

/**
 * guest-network-get-interfaces' answer as interfaces with the addresses a person can use:
 * no loopback, no IPv6 link-local (fe80::/10). Undefined when the answer is not that shape.
 */
export function parseGuestInterfaces(answer: unknown): GuestInterface[] | undefined {
  const parsed = agentInterfaces.safeParse(answer);
  if (!parsed.success) return undefined;
  return parsed.data
    .filter((nic) => nic.name !== "lo")
    .map((nic) => ({
      name: nic.name,
      mac: nic["hardware-address"] ?? null,
      addresses: (nic["ip-addresses"] ?? [])
        .filter((ip) => !(ip["ip-address-type"] === "ipv6" && /^fe[89ab]/i.test(ip["ip-address"])))
        .map((ip) => ({ family: ip["ip-address-type"], address: ip["ip-address"], prefix: ip.prefix })),
    }));
}
