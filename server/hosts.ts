/**
 * This Hangar process's host in the Host table: registered at start-up, kept alive by a
 * heartbeat. Every VM row names its host; only that host's Hangar acts on it.
 */
import os from "node:os";
import type { Db } from "./db.ts";

export interface HostsOptions {
  db: Db;
  name?: string;
  apiAddress: string;
  /** The accelerator in use, once the probe decided (never waits for it). */
  accelerator: () => string;
}

export type Hosts = ReturnType<typeof createHosts>;

export function createHosts({ db, name = os.hostname(), apiAddress, accelerator }: HostsOptions) {
  let registered: Promise<string> | undefined;

  async function beat(): Promise<string> {
    const data = {
      apiAddress,
      heartbeatAt: new Date(),
      accelerator: accelerator(),
      freeMemoryMiB: Math.floor(os.freemem() / 1024 / 1024),
    };
    const host = await db.host.upsert({ where: { name }, create: { name, ...data }, update: data });
    return host.id;
  }

  /** This host's id, registering it on first use. */
  function selfId(): Promise<string> {
    registered ??= beat();
    return registered;
  }

  /** Beats every `intervalMs`; returns a stop function. */
  function startHeartbeat(intervalMs: number): () => void {
    const timer = setInterval(() => void beat().catch(() => undefined), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  return { name, selfId, startHeartbeat, list: () => db.host.findMany({ orderBy: { name: "asc" } }) };
}
