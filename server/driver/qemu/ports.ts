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

/** True when nothing listens on 127.0.0.1:`port`, so qemu can bind it. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
