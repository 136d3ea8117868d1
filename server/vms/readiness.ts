/**
 * The `ready` condition of a running VM: cloud-init finished (done, or error and which
 * module failed), read with `cloud-init status` over SSH as the image's login user. An image
 * without cloud-init is ready once that login works. SSH answering alone is not ready: a
 * Debian guest answers SSH long before its runcmd ran.
 *
 * Owned by the lifecycle: it starts a watch after each boot (in the background, with
 * backoff, bounded, over as soon as the VM stops or boots again) and clears the condition on
 * stop. The watch writes Vm.readyState/readyAt/readyDetail, never Vm.state.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { Db } from "../db.ts";
import type { Manager } from "../driver/manager.ts";
import { HangarError } from "../errors.ts";

export const READY_STATES = ["booting", "ready", "error"] as const;
export type ReadyState = (typeof READY_STATES)[number];

export interface Readiness {
  state: ReadyState;
  /** cloud-init's result in words, for the VM page and events. */
  detail: string;
}

/**
 * What runs in the guest: cloud-init's JSON status where it has `--format json`, its
 * `--long` text where not (older releases), or a line saying there is no cloud-init.
 */
export const READY_PROBE = [
  "sh",
  "-c",
  "if command -v cloud-init >/dev/null 2>&1; then " +
    "out=$(cloud-init status --format json 2>/dev/null); " +
    `case "$out" in "{"*) printf '%s\\n' "$out" ;; *) cloud-init status --long 2>&1 ;; esac; ` +
    "else echo 'no cloud-init'; fi",
];

const NO_CLOUD_INIT = "no cloud-init: ready once SSH logs in";

/**
 * How long one probe may take. `cloud-init status` is Python: a Debian guest without KVM on a
 * busy host took 47 s to answer it, so a shorter limit would never see the guest ready.
 */
const PROBE_TIMEOUT_MS = 120_000;

const statusJson = z.object({
  status: z.string(),
  extended_status: z.string().optional(),
  errors: z.array(z.unknown()).optional(),
  detail: z.string().optional(),
});

/** The modules named in cloud-init's errors, e.g. "('scripts_user', RuntimeError(...))". */
function failedModules(errors: string[]): string[] {
  const modules = errors.flatMap((error) => [...error.matchAll(/\(\s*'([A-Za-z0-9_-]+)'\s*,/g)].map((m) => m[1] ?? ""));
  return [...new Set(modules.filter(Boolean))];
}

function fromStatus(status: string, errors: string[], extended?: string): Readiness {
  const first = (errors[0] ?? "").slice(0, 300);
  switch (status) {
    case "done":
      return { state: "ready", detail: extended?.startsWith("degraded") ? `cloud-init done with warnings (${extended})` : "cloud-init done" };
    case "disabled":
      return { state: "ready", detail: "cloud-init is disabled: ready once SSH logs in" };
    case "error": {
      const modules = failedModules(errors);
      const where = modules.length > 0 ? `in module ${modules.join(", ")}` : "with an error";
      return { state: "error", detail: `cloud-init failed ${where}${first ? `: ${first}` : ""}` };
    }
    default:
      return { state: "booting", detail: `cloud-init ${status}` };
  }
}

/** Pure: the probe's output (READY_PROBE) -> the condition. */
export function parseReadiness(stdout: string): Readiness {
  const text = stdout.trim();
  if (text === "no cloud-init") return { state: "ready", detail: NO_CLOUD_INIT };
  if (text.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { state: "booting", detail: "cloud-init status gave unreadable JSON" };
    }
    const parsed = statusJson.safeParse(value);
    if (!parsed.success) return { state: "booting", detail: "cloud-init status gave no status" };
    const errors = (parsed.data.errors ?? []).map((e) => (typeof e === "string" ? e : JSON.stringify(e)));
    return fromStatus(parsed.data.status, errors, parsed.data.extended_status);
  }
  const status = /^status:\s*(.+)$/m.exec(text)?.[1]?.trim();
  if (!status) return { state: "booting", detail: "cloud-init status gave no status" };
  const errorBlock = /^errors:\s*\n((?:[ \t]+-.*\n?)*)/m.exec(`${text}\n`)?.[1] ?? "";
  const errors = errorBlock
    .split("\n")
    .map((line) => line.replace(/^[ \t]+-\s*/, "").trim())
    .filter(Boolean);
  return fromStatus(status, errors);
}

export interface ReadinessDeps {
  db: Db;
  driverFor: (vmId: string) => Manager;
  /** Called once the condition settles (ready or error): the lifecycle records and publishes. */
  settled: (vm: { id: string; name: string }, readiness: Readiness) => Promise<void>;
  /** How long a watch tries before it records the VM as not ready (error). */
  watchLimitMs?: number;
  /** Backoff between probes: first delay, doubling up to the max. */
  backoffMs?: { first: number; max: number };
}

/** The row fields that a fresh boot starts with, and a stop clears. */
export const BOOTING = { readyState: "booting", readyAt: null, readyDetail: null } as const;
export const NOT_RUNNING = { readyState: null, readyAt: null, readyDetail: null } as const;

export function isSettled(readyState: string | null): readyState is "ready" | "error" {
  return readyState === "ready" || readyState === "error";
}

export type ReadinessWatcher = ReturnType<typeof createReadiness>;

export function createReadiness({ db, driverFor, settled, watchLimitMs = 15 * 60_000, backoffMs = { first: 250, max: 1000 } }: ReadinessDeps) {
  /** vmId -> the watch of the boot with that pid. */
  const watches = new Map<string, { pid: number; stop: AbortController; done: Promise<void> }>();

  async function current(vmId: string) {
    return db.vm.findUnique({ where: { id: vmId }, include: { image: { select: { loginUser: true } } } });
  }

  /** One probe: undefined while SSH does not let us in yet. */
  async function probe(vmId: string, sshPort: number, user: string): Promise<Readiness | undefined> {
    const driver = driverFor(vmId);
    if (!(await driver.sshAnswers(sshPort).catch(() => false))) return undefined;
    const { privateKeyFile } = await driver.identity();
    const result = await driver
      .shell(READY_PROBE, sshPort, privateKeyFile, { user, timeoutMs: PROBE_TIMEOUT_MS, maxOutputBytes: 64 * 1024 })
      .catch(() => undefined);
    return result ? parseReadiness(result.stdout) : undefined;
  }

  async function run(vmId: string, pid: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + watchLimitMs;
    let delay = backoffMs.first;
    let last = "SSH did not let Hangar in";
    while (!signal.aborted) {
      const vm = await current(vmId);
      // Stopped, gone, or booted again (another pid has its own watch): this watch is over.
      if (!vm || vm.state !== "Running" || vm.pid !== pid || !vm.sshPort || isSettled(vm.readyState)) return;
      const found = await probe(vmId, vm.sshPort, vm.image.loginUser);
      const outcome =
        found && found.state !== "booting"
          ? found
          : Date.now() >= deadline
            ? { state: "error" as const, detail: `not ready after ${Math.round(watchLimitMs / 60_000)} min: ${found?.detail ?? last}` }
            : undefined;
      if (found) last = found.detail;
      if (outcome) {
        const written = await db.vm.updateMany({
          where: { id: vmId, state: "Running", pid },
          data: { readyState: outcome.state, readyAt: new Date(), readyDetail: outcome.detail },
        });
        if (written.count === 1) await settled(vm, outcome);
        return;
      }
      if (found && found.detail !== vm.readyDetail) {
        await db.vm.updateMany({ where: { id: vmId, state: "Running", pid, readyState: "booting" }, data: { readyDetail: found.detail } });
      }
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      delay = Math.min(delay * 2, backoffMs.max);
    }
  }

  /** Watches the boot with `pid` of VM `vmId` until it is ready, stops or boots again. */
  function watch(vmId: string, pid: number): void {
    const held = watches.get(vmId);
    if (held?.pid === pid) return;
    held?.stop.abort();
    const stop = new AbortController();
    const done = run(vmId, pid, stop.signal)
      .catch(() => undefined)
      .finally(() => {
        if (watches.get(vmId)?.stop === stop) watches.delete(vmId);
      });
    watches.set(vmId, { pid, stop, done });
  }

  /** Ends the watch of `vmId` (the VM stopped or is going away). */
  function forget(vmId: string): void {
    watches.get(vmId)?.stop.abort();
    watches.delete(vmId);
  }

  /**
   * Waits until the running VM's condition settles and returns it (state "ready" or
   * "error"). WAIT_FAILED (TIMEOUT) after `timeoutMs`; NOT_RUNNING when the VM is not
   * running or stops meanwhile. A VM still Starting is waited for.
   */
  async function waitForReady(vmId: string, timeoutMs: number, signal?: AbortSignal): Promise<Readiness> {
    const deadline = Date.now() + timeoutMs;
    let sawRunning = false;
    for (;;) {
      const vm = await current(vmId);
      if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}"; it may have been deleted.`);
      if (vm.state === "Running" && vm.pid) {
        sawRunning = true;
        if (isSettled(vm.readyState)) return { state: vm.readyState, detail: vm.readyDetail ?? "" };
        // A VM adopted after a restart, or running since before readiness existed.
        watch(vmId, vm.pid);
      } else if (vm.state !== "Starting") {
        const how = sawRunning ? `stopped (it is ${vm.state}) while Hangar waited for it to be ready` : `is ${vm.state}; start it first`;
        throw new HangarError("NOT_RUNNING", `VM "${vm.name}" ${how}.`);
      }
      if (signal?.aborted) throw new HangarError("WAIT_FAILED", `Waiting for VM "${vm.name}" to be ready was cancelled.`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const why = vm.readyDetail ?? (vm.state === "Starting" ? "it is still starting" : "its SSH does not let Hangar in yet");
        throw new HangarError(
          "WAIT_FAILED",
          `VM "${vm.name}" was not ready within ${Math.round(timeoutMs / 1000)} s (${why}); wait longer or look at its console.`,
        );
      }
      await sleep(Math.min(200, left));
    }
  }

  async function close(): Promise<void> {
    const all = [...watches.values()];
    for (const held of all) held.stop.abort();
    await Promise.allSettled(all.map((held) => held.done));
  }

  return { watch, forget, waitForReady, close, watching: (vmId: string) => watches.has(vmId) };
}
