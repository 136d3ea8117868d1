/**
 * Metric history. The last hour at the sampler's resolution lives in memory, one ring
 * buffer per VM and host; each finished minute is averaged into one MetricPoint row, kept
 * 24 hours (older rows are deleted as minutes pass). "1h" reads memory, "24h" the rows.
 */
import type { Db } from "../db.ts";

export const RANGES = ["1h", "24h"] as const;
export type Range = (typeof RANGES)[number];
export type SubjectKind = "vm" | "host";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MINUTE_MS = 60_000;

/** A point: its time and figures (numbers, null where unmeasured, or a small record). */
export type Point = { at: number } & Record<string, unknown>;

/** A fixed-size buffer that overwrites its oldest entries. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const item = this.items[(start + i) % this.capacity];
      if (item !== undefined) out.push(item);
    }
    return out;
  }

  last(): T | undefined {
    return this.count === 0 ? undefined : this.items[(this.next - 1 + this.capacity) % this.capacity];
  }
}

/**
 * The average of `points` field by field: numbers are averaged over the points that have
 * one (null when none has), anything else is the last point's.
 */
export function averagePoints(points: Point[], at: number): Point {
  const fields = new Map<string, { sum: number; n: number; last: unknown }>();
  for (const point of points) {
    for (const [key, value] of Object.entries(point)) {
      if (key === "at") continue;
      const field = fields.get(key) ?? { sum: 0, n: 0, last: null };
      if (typeof value === "number") {
        field.sum += value;
        field.n += 1;
      } else if (value !== null) {
        field.last = value;
      }
      fields.set(key, field);
    }
  }
  const out: Point = { at };
  for (const [key, field] of fields) out[key] = field.n > 0 ? field.sum / field.n : field.last;
  return out;
}

interface Subject {
  kind: SubjectKind;
  subjectId: string;
  ring: Ring<Point>;
  minute: number;
  pending: Point[];
}

export interface HistoryDeps {
  db: Db;
  /** The sampler's interval: the ring holds an hour of it. */
  intervalMs: number;
  now?: () => number;
}

export type History = ReturnType<typeof createHistory>;

export function createHistory({ db, intervalMs, now = Date.now }: HistoryDeps) {
  const capacity = Math.ceil(HOUR_MS / intervalMs) + 1;
  const subjects = new Map<string, Subject>();
  /** Finished minutes waiting to be written. */
  let unwritten: { kind: SubjectKind; subjectId: string; point: Point }[] = [];

  const keyOf = (kind: SubjectKind, id: string) => `${kind}:${id}`;

  function add(kind: SubjectKind, subjectId: string, point: Point): void {
    const key = keyOf(kind, subjectId);
    const minute = Math.floor(point.at / MINUTE_MS) * MINUTE_MS;
    let subject = subjects.get(key);
    if (!subject) {
      subject = { kind, subjectId, ring: new Ring(capacity), minute, pending: [] };
      subjects.set(key, subject);
    }
    if (minute !== subject.minute && subject.pending.length > 0) {
      unwritten.push({ kind, subjectId, point: averagePoints(subject.pending, subject.minute) });
      subject.pending = [];
    }
    subject.minute = minute;
    subject.pending.push(point);
    subject.ring.push(point);
  }

  /**
   * Writes the finished minutes, deletes rows older than 24 hours and forgets subjects
   * that have had no point for an hour (a deleted VM). `unfinished` writes the minute in
   * progress too, as far as it goes (at shutdown: a restart then continues the history
   * without a gap, and its own average of that minute replaces this one).
   */
  async function flush(options: { unfinished?: boolean } = {}): Promise<void> {
    if (options.unfinished) {
      for (const subject of subjects.values()) {
        if (subject.pending.length === 0) continue;
        unwritten.push({ kind: subject.kind, subjectId: subject.subjectId, point: averagePoints(subject.pending, subject.minute) });
        subject.pending = [];
      }
    }
    for (const [key, subject] of subjects) {
      const last = subject.ring.last();
      if (last && last.at >= now() - HOUR_MS) continue;
      // Its last minute is finished too: it is written before the subject is forgotten.
      if (subject.pending.length > 0)
        unwritten.push({ kind: subject.kind, subjectId: subject.subjectId, point: averagePoints(subject.pending, subject.minute) });
      subjects.delete(key);
    }
    const rows = unwritten;
    unwritten = [];
    for (const { kind, subjectId, point } of rows) {
      const { at, ...figures } = point;
      const data = JSON.stringify(figures);
      const when = new Date(at);
      // A restart within a minute writes that minute again: the later average wins.
      await db.metricPoint.upsert({
        where: { kind_subjectId_at: { kind, subjectId, at: when } },
        create: { kind, subjectId, at: when, data },
        update: { data },
      });
    }
    const cutoff = now() - DAY_MS;
    await db.metricPoint.deleteMany({ where: { at: { lt: new Date(cutoff) } } });
  }

  /** Rows of the last `sinceMs`, oldest first, as points. */
  async function stored(kind: SubjectKind, subjectId: string, sinceMs: number): Promise<Point[]> {
    const rows = await db.metricPoint.findMany({
      where: { kind, subjectId, at: { gte: new Date(now() - sinceMs) } },
      orderBy: { at: "asc" },
      select: { at: true, data: true },
    });
    return rows.flatMap((row) => {
      const figures = parseFigures(row.data);
      return figures ? [{ ...figures, at: row.at.getTime() }] : [];
    });
  }

  /**
   * The points of one VM or host over `range`, oldest first. "1h" is the sampler's own
   * points when this process has them (its own host), else the stored minutes.
   */
  async function points(kind: SubjectKind, subjectId: string, range: Range): Promise<Point[]> {
    if (range === "1h") {
      const cutoff = now() - HOUR_MS;
      const live =
        subjects
          .get(keyOf(kind, subjectId))
          ?.ring.toArray()
          .filter((p) => p.at >= cutoff) ?? [];
      return live.length > 0 ? live : stored(kind, subjectId, HOUR_MS);
    }
    return stored(kind, subjectId, DAY_MS);
  }

  /** The newest point of a subject this process sampled. */
  function latest(kind: SubjectKind, subjectId: string): Point | undefined {
    return subjects.get(keyOf(kind, subjectId))?.ring.last();
  }

  /** The newest stored minute of each subject of `kind` among `ids`. */
  async function latestStored(kind: SubjectKind, ids: string[]): Promise<Map<string, Point>> {
    const rows = await db.metricPoint.findMany({
      where: { kind, subjectId: { in: ids }, at: { gte: new Date(now() - 5 * MINUTE_MS) } },
      orderBy: { at: "asc" },
      select: { subjectId: true, at: true, data: true },
    });
    const out = new Map<string, Point>();
    for (const row of rows) {
      const figures = parseFigures(row.data);
      if (figures) out.set(row.subjectId, { ...figures, at: row.at.getTime() });
    }
    return out;
  }

  return { add, flush, points, latest, latestStored };
}

/** A stored row's figures: a JSON object (written by flush), or undefined when not one. */
function parseFigures(data: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(data);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? Object.fromEntries(Object.entries(value)) : undefined;
  } catch {
    return undefined;
  }
}
