/**
 * Disk I/O counters of a running qemu through QMP `query-blockstats`: bytes and operations
 * read and written since qemu started, summed over its drives (the disk, the cidata CD,
 * UEFI variables).
 */
import { z } from "zod";
import type { BlockStats } from "../manager.ts";
import { withQmp } from "./qmp.ts";

const blockStatsReply = z.array(
  z.object({
    stats: z.object({
      rd_bytes: z.number().nonnegative(),
      wr_bytes: z.number().nonnegative(),
      rd_operations: z.number().nonnegative(),
      wr_operations: z.number().nonnegative(),
    }),
  }),
);

/** The totals of a `query-blockstats` reply; undefined when qemu answered something else. */
export function sumBlockStats(reply: unknown): BlockStats | undefined {
  const parsed = blockStatsReply.safeParse(reply);
  if (!parsed.success) return undefined;
  const total: BlockStats = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  for (const { stats } of parsed.data) {
    total.readBytes += stats.rd_bytes;
    total.writeBytes += stats.wr_bytes;
    total.readOps += stats.rd_operations;
    total.writeOps += stats.wr_operations;
  }
  return total;
}

/**
 * Asks the qemu behind `socketPath`. qemu serves one QMP client at a time: the sampler holds
 * the socket for a few milliseconds and gives up quickly when a lifecycle action has it.
 */
export async function queryBlockStats(socketPath: string, timeoutMs = 1000): Promise<BlockStats> {
  const reply = await withQmp(socketPath, (qmp) => qmp.execute("query-blockstats", undefined, timeoutMs), timeoutMs);
  const stats = sumBlockStats(reply);
  if (!stats) throw new Error("qemu's query-blockstats reply was not understood");
  return stats;
}
