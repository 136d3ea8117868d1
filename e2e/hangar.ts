/**
 * Test helpers that talk to the server the way other services do (tRPC over HTTP) and
 * look at the host (the qemu processes, the VM's serial log).
 */
import fs from "node:fs";
import path from "node:path";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import type { TestInfo } from "@playwright/test";
import superjson from "superjson";
import type { AppRouter } from "../server/api/root.ts";

/** HANGAR_E2E_PORT lets two checkouts on one machine run their suites side by side. */
export const e2ePort = Number(process.env.HANGAR_E2E_PORT ?? 3100);
export const baseURL = `http://127.0.0.1:${e2ePort}`;

/** The state directory the config made for this run's server. */
export function stateDir(): string {
  const dir = process.env.HANGAR_E2E_STATE_DIR;
  if (!dir) throw new Error("HANGAR_E2E_STATE_DIR is not set; run the tests through playwright.config.ts");
  return dir;
}

/** The admin the server creates at start-up (playwright.config.ts passes these to it). */
export const ADMIN = { email: "admin@e2e.hangar", password: "e2e admin password" };

/** The admin's session, saved by global-setup.ts, used by the browser and by `api`. */
export const STORAGE_STATE = path.join(path.dirname(new URL(import.meta.url).pathname), ".auth", "admin.json");

function sessionCookie(): string {
  const state = JSON.parse(fs.readFileSync(STORAGE_STATE, "utf8")) as { cookies: { name: string; value: string }[] };
  return state.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

export const api = createTRPCClient<AppRouter>({
  // A change sent with a session cookie must name Hangar's origin, as a browser does.
  links: [httpLink({ url: `${baseURL}/api/trpc`, transformer: superjson, headers: () => ({ cookie: sessionCookie(), origin: baseURL }) })],
});

export function uniqueName(prefix = "e2e"): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Pids of processes whose command line names this VM (`-name hangar-<id>`). */
export function qemuPids(vmId: string): number[] {
  const needle = `hangar-${vmId}`;
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (cmdline.split(" ").includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

export function serialLogPath(vmId: string): string {
  return path.join(stateDir(), "vms", vmId, "serial.log");
}

/** Attaches the VM's serial log to the test's report, if there is one. */
export async function attachSerialLog(testInfo: TestInfo, vmId: string): Promise<void> {
  const file = serialLogPath(vmId);
  if (fs.existsSync(file)) {
    await testInfo.attach(`serial-${vmId}.log`, { path: file, contentType: "text/plain" });
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof TRPCClientError && (error.data as { code?: string } | undefined)?.code === "NOT_FOUND";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Leaves nothing behind: waits out a transient state, stops the VM if it runs, deletes it.
 * Returns silently when the VM is already gone.
 */
export async function removeVm(vmId: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    let vm;
    try {
      vm = await api.vm.get.query({ id: vmId });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    try {
      if (vm.actions.includes("Stop") && vm.state !== "Stopped") await api.vm.stop.mutate({ id: vmId, timeoutSec: 10 });
      else if (vm.actions.includes("Delete")) {
        await api.vm.delete.mutate({ id: vmId });
        return;
      } else await sleep(500); // Starting, Stopping, Cloning…: wait for it to settle
    } catch (error) {
      if (isNotFound(error)) return;
      await sleep(500); // lost a race with the UI; look again
    }
  }
  throw new Error(`VM ${vmId} could not be cleaned up within 90 s`);
}

/** Waits until no process runs for this VM; throws with the pids otherwise. */
export async function expectNoQemu(vmId: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pids = qemuPids(vmId);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(250);
    pids = qemuPids(vmId);
  }
  if (pids.length > 0) throw new Error(`qemu for VM ${vmId} still runs: pid ${pids.join(", ")}`);
}

/** A tRPC client signed in as `email` (its own session), or acting with an API token. */
export async function clientFor(credentials: { email: string; password: string } | { token: string }) {
  if ("token" in credentials) {
    return createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${baseURL}/api/trpc`, transformer: superjson, headers: { authorization: `Bearer ${credentials.token}` } })],
    });
  }
  const response = await fetch(`${baseURL}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: baseURL },
    body: JSON.stringify(credentials),
  });
  if (!response.ok) throw new Error(`sign-in as ${credentials.email} failed: ${response.status}`);
  const cookie = response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${baseURL}/api/trpc`, transformer: superjson, headers: { cookie, origin: baseURL } })],
  });
}

/** The tRPC error code of a refused call ("FORBIDDEN", "NOT_FOUND"…). */
export async function refusalCode(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCClientError)) throw new Error("the call was not refused");
  return String((error.data as { code?: string } | undefined)?.code);
}
