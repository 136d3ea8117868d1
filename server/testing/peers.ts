/**
 * Several Hangar hosts in this test process, on one database, each with its own state
 * directory, images directory, host name and HTTP server (the real request handler, pages a
 * stand-in): enough to test what hosts do for each other (terminal proxying, image copies)
 * without starting processes. server/testing/cluster.ts starts real processes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createDb } from "../db.ts";
import type { Manager } from "../driver/manager.ts";
import { createHangar, type Hangar } from "../hangar.ts";
import { createHttpServer } from "../http-server.ts";
import { createTestHangar, testEnv } from "./fixtures.ts";

export interface Peer {
  name: string;
  hangar: Hangar;
  /** http://127.0.0.1:<port>, also its Host row's address. */
  url: string;
}

/** The secret every peer shares, as hosts of one cluster do. */
export const PEERS_SECRET = "peers-test-cluster-secret-0123456789abcdef";

async function listening(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

export async function startPeers(names: string[], driverFor: (name: string) => ((vmId: string) => Manager) | undefined = () => undefined) {
  const peers: Peer[] = [];
  const closers: (() => Promise<void>)[] = [];
  let databaseUrl = "";
  for (const name of names) {
    const { server, port } = await listening();
    const settings = { PORT: port, HANGAR_HOST_NAME: name, HANGAR_AUTH_SECRET: PEERS_SECRET };
    let hangar: Hangar;
    if (!databaseUrl) {
      const t = await createTestHangar({ driverFor: driverFor(name), settings });
      hangar = t.hangar;
      databaseUrl = t.env.databaseUrl;
      closers.push(t.cleanup);
    } else {
      const stateDir = mkdtempSync(path.join(os.tmpdir(), `hangar-peer-${name}-`));
      const db = createDb(databaseUrl);
      hangar = createHangar({ env: testEnv(stateDir, databaseUrl, settings), db, driverFor: driverFor(name) });
      closers.unshift(async () => {
        await hangar.lifecycle.close();
        await db.$disconnect();
        rmSync(stateDir, { recursive: true, force: true });
      });
    }
    await hangar.hosts.selfId();
    createHttpServer(
      {
        hangar,
        dev: false,
        pages: {
          handle: async (_req, res) => void res.writeHead(404).end(),
          handleUpgrade: async (_req, socket) => void socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        },
      },
      server,
    );
    closers.unshift(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      hangar.terminals.close();
      hangar.consoles.closeAll();
    });
    peers.push({ name, hangar, url: `http://127.0.0.1:${port}` });
  }
  return {
    peers,
    peer(name: string): Peer {
      const found = peers.find((p) => p.name === name);
      if (!found) throw new Error(`no peer ${name}`);
      return found;
    },
    async close(): Promise<void> {
      for (const close of closers) await close();
    },
  };
}
