/**
 * Host ports of user-mode networking. A forward asked with host port 0 is bound by qemu
 * to a free port; `info usernet` tells which.
 */
import net from "node:net";

export interface HostForward {
  hostPort: number;
  guestPort: number;
}

/**
 * Parses HMP `info usernet`: the TCP[HOST_FORWARD] rows, as (host port, guest port).
 *   TCP[HOST_FORWARD]  13       127.0.0.1 34567       10.0.2.15    22     0     0
 */
export function parseUsernetForwards(text: string): HostForward[] {
  const forwards: HostForward[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== "TCP[HOST_FORWARD]" || fields.length < 6) continue;
    const hostPort = Number(fields[3]);
    const guestPort = Number(fields[5]);
    if (Number.isInteger(hostPort) && Number.isInteger(guestPort)) forwards.push({ hostPort, guestPort });
  }
  return forwards;
}

/**
 * The forward qemu could not listen for, from its output when it would not start:
 *   qemu-system-x86_64: -netdev user,…: Could not set up host forwarding rule 'tcp:127.0.0.1:3401-:80'
 */
export function refusedForward(output: string): HostForward | undefined {
  const rule = /Could not set up host forwarding rule '[^']*?:(\d+)-(?:[^':]*:)?(\d+)'/i.exec(output);
  return rule ? { hostPort: Number(rule[1]), guestPort: Number(rule[2]) } : undefined;
}

/** Where the host connects to a forward listening on `forwardAddress` (0.0.0.0: loopback). */
export function connectAddress(forwardAddress: string): string {
  return forwardAddress === "0.0.0.0" ? "127.0.0.1" : forwardAddress;
}

/** True when nothing listens on `address`:`port`, so qemu can bind it. */
export function isPortFree(port: number, address = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** True when something on `host`:`port` greets with an SSH banner ("SSH-2.0-…"). */
export function greetsWithSshBanner(port: number, host = "127.0.0.1", timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host, port });
    let text = "";
    const done = () => {
      socket.destroy();
      resolve(text.startsWith("SSH-"));
    };
    socket.setTimeout(timeoutMs, done);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.includes("\n")) done();
    });
    socket.on("error", done);
    socket.on("close", done);
  });
}
