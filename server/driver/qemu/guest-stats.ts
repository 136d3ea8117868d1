/**
 * The guest's own view of its memory, as its balloon driver reports it through QMP (qom-get
 * guest-stats on the balloon device, which is never inflated). The driver reports only once
 * asked to poll: the first query of a qemu sets the interval and has no figures yet. A guest
 * without the driver, or a qemu started before VMs had a balloon, has none.
 */
import { z } from "zod";
import type { GuestMemory } from "../manager.ts";
import { withQmp } from "./qmp.ts";

const BALLOON = "/machine/peripheral/balloon0";
/** How often the guest's driver sends its figures: within one sample of the sampler's default. */
const POLL_SECONDS = 2;

const guestStatsReply = z.object({ "last-update": z.number(), stats: z.record(z.string(), z.number()) });

/** Total and available memory from a guest-stats reply; null until the guest has reported. */
export function parseGuestStats(reply: unknown): GuestMemory | null {
  const parsed = guestStatsReply.safeParse(reply);
  if (!parsed.success || parsed.data["last-update"] === 0) return null;
  const stat = (name: string) => parsed.data.stats[name] ?? -1;
  const total = stat("stat-total-memory");
  // Available is the guest kernel's MemAvailable; a driver too old to send it sends free only.
  const available = stat("stat-available-memory") >= 0 ? stat("stat-available-memory") : stat("stat-free-memory");
  if (total <= 0 || available < 0) return null;
  return { totalBytes: total, availableBytes: Math.min(available, total) };
}

export async function queryGuestMemory(socketPath: string, timeoutMs = 1000): Promise<GuestMemory | null> {
  return withQmp(
    socketPath,
    async (qmp) => {
      const interval = await qmp.execute("qom-get", { path: BALLOON, property: "guest-stats-polling-interval" }, timeoutMs);
      if (interval === 0) {
        await qmp.execute("qom-set", { path: BALLOON, property: "guest-stats-polling-interval", value: POLL_SECONDS }, timeoutMs);
        return null;
      }
      return parseGuestStats(await qmp.execute("qom-get", { path: BALLOON, property: "guest-stats" }, timeoutMs));
    },
    timeoutMs,
  );
}
