/**
 * Calls forwarded between hosts as jobs, through pg-boss on the shared PostgreSQL: each
 * host works its own queue (`host-<hostId>`), and a caller sends a job there and awaits its
 * output. pg-boss takes jobs with SKIP LOCKED, so each runs once, and keeps them until they
 * are done; nothing of it is home-made.
 *
 * Waking, both ways, is PostgreSQL LISTEN/NOTIFY on one channel: a caller that sent a job
 * notifies the owning host, whose idle pg-boss worker fetches at once (instead of at its
 * next poll, which stays as the fallback); the worker completes the job with its outcome,
 * then notifies that the job is taken and later done, and the caller reads the output from
 * pg-boss. A caller whose job nobody takes within the pickup time cancels it and says which
 * host did not answer, and that the call was not run. That stays true: a host takes the job
 * too late to run it when more than the pickup time passed between its sending and its
 * taking, both on the database's clock (a job taken in the instant of its cancel, or left by
 * a caller that died, is never run later).
 */
import { randomUUID } from "node:crypto";
import PgBoss from "pg-boss";
import pg from "pg";
import { z } from "zod";
import { HangarError, errorMessage } from "../errors.ts";

/** The one channel of cluster notifications. */
const CHANNEL = "hangar_cluster";

/** How many forwarded calls a host runs at once (a long exec does not hold up a start). */
const WORKERS = 12;

/** How long after the pickup time a caller looks at its job: a taking meanwhile is too late to run it. */
const PICKUP_SLACK_MS = 1000;

/** A forwarded call as sent: the caller's data, and how long the caller waits for it to be taken. */
const envelope = z.object({ call: z.unknown(), pickupMs: z.number() });

/** The output of a job taken after its pickup time: not run. */
const NOT_RUN = { notRun: true } as const;
const notRun = z.object({ notRun: z.literal(true) }).strict();

/** The output of a job the host's previous process had taken when it ended (a crash): cut short. */
const CUT_SHORT = { cutShort: true } as const;
const cutShort = z.object({ cutShort: z.literal(true) }).strict();

/** pg-boss's schema (its default, which Hangar keeps). */
const BOSS_SCHEMA = "pgboss";
const jobIds = z.array(z.object({ id: z.string() }));

/** A worker's fallback poll when a notification is lost (each is woken by NOTIFY otherwise). */
const FALLBACK_POLL_SECONDS = 10;

/**
 * An arbitrary constant: the advisory lock hosts take turns on to create their queues. pg-boss
 * makes a queue's partition with DDL on its shared tables, and two hosts doing that at the
 * same moment deadlock (seen with three hosts started together), so one of them failed to start.
 */
const QUEUE_CREATION_LOCK = 72_616_002;

export function queueOf(hostId: string): string {
  return `host-${hostId}`;
}

const notification = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("job"), queue: z.string() }),
  z.object({ kind: z.literal("taken"), id: z.string() }),
  z.object({ kind: z.literal("done"), id: z.string() }),
]);
type Notification = z.infer<typeof notification>;

export interface HostRef {
  id: string;
  name: string;
}

interface Waiter {
  queue: string;
  host: HostRef;
  taken: boolean;
  settle: (outcome: unknown) => void;
  fail: (error: Error) => void;
  /** Reads the job once: its output when done; its state otherwise. */
  check: () => Promise<void>;
}

export interface JobsOptions {
  databaseUrl: string;
  /** How long a live host may leave a job untaken before the caller gives up on it. */
  pickupMs: number;
  log: (message: string) => void;
}

export type Jobs = ReturnType<typeof createJobs>;

export function createJobs({ databaseUrl, pickupMs, log }: JobsOptions) {
  const boss = new PgBoss({ connectionString: databaseUrl, max: 4, schedule: false, application_name: "hangar-jobs" });
  boss.on("error", (error) => log(`job queue: ${errorMessage(error)}`));
  const waiters = new Map<string, Waiter>();
  let started: Promise<void> | undefined;
  let listener: pg.Client | undefined;
  let closed = false;
  /** This host's queue and its workers, once it serves. */
  let served: { queue: string; workerIds: string[]; busy: Set<string> } | undefined;

  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: "hangar-listen" });
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(message.payload);
      } catch {
        return;
      }
      const note = notification.safeParse(parsed);
      if (note.success) onNotification(note.data);
    });
    // A lost connection loses notifications: listen again, then look at every pending job.
    client.on("error", (error) => log(`job notifications: ${errorMessage(error)}`));
    client.on("end", () => {
      if (closed) return;
      setTimeout(() => {
        void listen().then(
          () => Promise.all([...waiters.values()].map((w) => w.check())),
          (error: unknown) => log(`job notifications: ${errorMessage(error)}`),
        );
      }, 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    listener = client;
  }

  function onNotification(note: Notification): void {
    if (note.kind === "job") {
      if (!served || note.queue !== served.queue) return;
      // One idle worker fetches now; when all are busy, each fetches as soon as it is free.
      const idle = served.workerIds.find((id) => !served?.busy.has(id));
      for (const id of idle ? [idle] : served.workerIds) boss.notifyWorker(id);
      return;
    }
    const waiter = waiters.get(note.id);
    if (!waiter) return;
    if (note.kind === "taken") waiter.taken = true;
    else void waiter.check();
  }

  async function notify(note: Notification): Promise<void> {
    await listener?.query("SELECT pg_notify($1, $2)", [CHANNEL, JSON.stringify(note)]);
  }

  function start(): Promise<void> {
    started ??= (async () => {
      await boss.start();
      await listen();
    })();
    return started;
  }

  async function createQueueInTurn(queue: string): Promise<void> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: "hangar-jobs" });
    await client.connect();
    try {
      await client.query("SELECT pg_advisory_lock($1)", [QUEUE_CREATION_LOCK]);
      await boss.createQueue(queue, { name: queue, retryLimit: 0 });
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [QUEUE_CREATION_LOCK]).catch(() => undefined);
      await client.end();
    }
  }

  /**
   * Jobs of `queue` taken by this host's previous process, which ended with them in hand (a
   * crash, then a restart): nothing will ever complete them, and a restart quicker than the
   * offline time never shows the host offline, so their callers would wait out their whole
   * budget (minutes). They are failed now, and their callers told at once.
   */
  async function failCutShort(queue: string): Promise<void> {
    const found = await boss.getDb().executeSql(`SELECT id FROM ${BOSS_SCHEMA}.job WHERE name = $1 AND state = 'active'`, [queue]);
    for (const { id } of jobIds.parse(found.rows)) {
      await boss.fail(queue, id, CUT_SHORT);
      await notify({ kind: "done", id }).catch(() => undefined);
    }
  }

  /**
   * Works this host's queue: each job's data goes to `handle`, whose outcome (JSON) becomes
   * the job's output. `handle` must not throw: it returns failures as outcomes. Called once,
   * at start-up, by the one process that holds the host name (its lease).
   */
  async function serve(hostId: string, handle: (data: unknown) => Promise<object>): Promise<void> {
    await start();
    const queue = queueOf(hostId);
    await createQueueInTurn(queue);
    await failCutShort(queue);
    const busy = new Set<string>();
    const workerIds: string[] = [];
    served = { queue, workerIds, busy };
    for (let i = 0; i < WORKERS; i += 1) {
      let workerId = "";
      const options = { batchSize: 1, pollingIntervalSeconds: FALLBACK_POLL_SECONDS, includeMetadata: true as const };
      workerId = await boss.work<unknown>(queue, options, async (jobs) => {
        busy.add(workerId);
        try {
          for (const job of jobs) {
            await notify({ kind: "taken", id: job.id }).catch(() => undefined);
            const sent = envelope.safeParse(job.data);
            // Taken after its pickup time: its caller has said, or is about to say, that it was not run.
            const inTime = sent.success && job.startedOn.getTime() - job.createdOn.getTime() <= sent.data.pickupMs;
            const outcome = inTime ? await handle(sent.data.call) : NOT_RUN;
            // Completed here, with the outcome, so the caller can read it when told; pg-boss's
            // own completion after this handler then finds the job done and changes nothing.
            await boss.complete(queue, job.id, outcome);
            await notify({ kind: "done", id: job.id }).catch(() => undefined);
          }
        } finally {
          busy.delete(workerId);
        }
      });
      workerIds.push(workerId);
    }
  }

  /**
   * Sends `data` to `host`'s queue and resolves with the job's output. Fails with TIMEOUT,
   * naming the host, when nobody takes the job within the pickup time (the job is cancelled)
   * or it is not done within `budgetMs`; fails with `signal`'s reason (a HangarError) when it
   * aborts, as when the host stops beating: the job is cancelled so it never runs later.
   */
  async function call(host: HostRef, data: object, budgetMs: number, what: string, signal?: AbortSignal): Promise<unknown> {
    await start();
    const queue = queueOf(host.id);
    const id = randomUUID();
    let abandoned = () => false;
    let armPickup = () => {};
    const outcome = new Promise<unknown>((resolve, reject) => {
      let done = false;
      /** The error to raise when the job turns out cancelled by this caller, not by its host. */
      let cancelledHere: HangarError | undefined;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(pickupTimer);
        clearTimeout(budgetTimer);
        signal?.removeEventListener("abort", onAbort);
        waiters.delete(id);
        settle();
      };
      const waiter: Waiter = {
        queue,
        host,
        taken: false,
        settle: (output) => finish(() => resolve(output)),
        fail: (error) => finish(() => reject(error)),
        check: async () => {
          const job = await boss.getJobById<unknown>(queue, id, { includeArchive: true }).catch(() => null);
          if (!job) return;
          if (job.state === "active") waiter.taken = true;
          if (job.state === "completed") {
            if (notRun.safeParse(job.output).success) waiter.fail(notRunError());
            else waiter.settle(job.output);
          } else if (job.state === "cancelled" && cancelledHere) waiter.fail(cancelledHere);
          else if (job.state === "failed" && cutShort.safeParse(job.output).success) {
            waiter.fail(
              new HangarError(
                "TIMEOUT",
                `Host ${host.name} restarted while it ran ${what}, so it may have run in part (that host finishes or undoes what a restart cut short); look at the VM before trying again.`,
              ),
            );
          } else if (job.state === "failed" || job.state === "cancelled") {
            waiter.fail(
              new HangarError(
                "TIMEOUT",
                `Host ${host.name} gave up on ${what} (its job ${job.state === "failed" ? "ran out of time" : "was cancelled"}); look at that host, then try again.`,
              ),
            );
          }
        },
      };
      const notRunError = () =>
        new HangarError(
          "TIMEOUT",
          `Host ${host.name} did not answer within ${Math.round(pickupMs / 1000)} s, so ${what} was not run; look at that host (is its Hangar running?), then try again.`,
        );
      // Armed once the job is sent, so the pickup time runs from no earlier than its creation.
      let pickupTimer: NodeJS.Timeout | undefined;
      armPickup = () => {
        pickupTimer = setTimeout(() => {
          void (async () => {
            await waiter.check();
            if (done || waiter.taken) return;
            // From now on a host that takes the job finds it too late and does not run it.
            cancelledHere = notRunError();
            await boss.cancel(queue, id).catch(() => undefined);
            // Taken in time after all: its outcome is awaited.
            await waiter.check();
            if (done || waiter.taken) return;
            waiter.fail(cancelledHere);
          })();
        }, pickupMs + PICKUP_SLACK_MS);
      };
      const onAbort = () => {
        const reason: unknown = signal?.reason;
        const error =
          reason instanceof HangarError ? reason : new HangarError("TIMEOUT", `The call to host ${host.name} was abandoned before ${what} answered.`);
        cancelledHere = error;
        // Not taken: it must not run when the host comes back. Taken: its outcome is lost anyway.
        void boss.cancel(queue, id).catch(() => undefined);
        waiter.fail(error);
      };
      if (signal?.aborted) queueMicrotask(onAbort);
      else signal?.addEventListener("abort", onAbort, { once: true });
      abandoned = () => cancelledHere !== undefined;
      const budgetTimer = setTimeout(() => {
        void waiter
          .check()
          .then(() =>
            waiter.fail(
              new HangarError(
                "TIMEOUT",
                `Host ${host.name} did not finish ${what} within ${Math.round(budgetMs / 1000)} s; it may still be under way there, so look at the VM before trying again.`,
              ),
            ),
          );
      }, budgetMs);
      waiters.set(id, waiter);
    });
    // It may fail (an abort, shutting down) while the job is still being sent, before the caller
    // holds it: handled here so that is no unhandled rejection; the caller still gets the error.
    outcome.catch(() => undefined);
    try {
      await boss.send(queue, { call: data, pickupMs }, { id, retryLimit: 0, expireInSeconds: Math.ceil(budgetMs / 1000) });
    } catch (error) {
      waiters.get(id)?.fail(
        new HangarError("TIMEOUT", `Host ${host.name} takes no calls yet (it has not started its job queue); start its Hangar, then try again.`, {
          cause: error,
        }),
      );
      return outcome;
    }
    // Abandoned while it was being sent: the cancel may have come before the job existed.
    if (abandoned()) await boss.cancel(queue, id).catch(() => undefined);
    else armPickup();
    await notify({ kind: "job", queue }).catch(() => undefined);
    return outcome;
  }

  async function close(): Promise<void> {
    closed = true;
    for (const waiter of waiters.values())
      waiter.fail(new HangarError("TIMEOUT", `Hangar is shutting down; the call to host ${waiter.host.name} was not awaited.`));
    if (started) await boss.stop({ graceful: true, timeout: 5000, wait: true }).catch(() => undefined);
    await listener?.end().catch(() => undefined);
  }

  return { start, serve, call, close };
}
