/**
 * The shapes of points as the API returns them. Stored minutes are JSON read back from the
 * database, so every point is checked against these before it leaves.
 */
import { z } from "zod";
import type { Point } from "./history.ts";
import type { HostPoint, VmPoint } from "./sampler.ts";

const figure = z.number().nullable();

export const vmPointSchema = z.object({
  at: z.number(),
  cpuPercent: figure,
  rssBytes: figure,
  // Minutes stored before the guest's figures were sampled have none.
  guestMemTotalBytes: figure.default(null),
  guestMemUsedBytes: figure.default(null),
  diskReadBytesPerSec: figure,
  diskWriteBytesPerSec: figure,
  diskReadOpsPerSec: figure,
  diskWriteOpsPerSec: figure,
  netRxBytesPerSec: figure,
  netTxBytesPerSec: figure,
}) satisfies z.ZodType<VmPoint>;

export const hostPointSchema = z.object({
  at: z.number(),
  cpuPercent: figure,
  cpus: z.number(),
  memTotalBytes: z.number(),
  memAvailableBytes: z.number(),
  diskTotalBytes: z.number(),
  diskFreeBytes: z.number(),
  vcpusAllocated: z.number(),
  memAllocatedBytes: z.number(),
  vms: z.record(z.string(), z.number()),
}) satisfies z.ZodType<HostPoint>;

/** The points that have the shape, in order (a row written by another version is skipped). */
export function pointsOf<T>(schema: z.ZodType<T>, points: Point[]): T[] {
  return points.flatMap((point) => {
    const parsed = schema.safeParse(point);
    return parsed.success ? [parsed.data] : [];
  });
}
