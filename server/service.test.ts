// Running Hangar as a service: `npm start` is the server itself (the script execs node), so
// a SIGTERM sent to the pid that was started reaches the server, which closes its port and
// exits 0 with nothing left behind. Needs the dashboard's production build (setup builds it).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { freePort } from "./testing/processes.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Pids of live processes whose environment names `stateDir` (the server and anything it started). */
function processesUsing(stateDir: string): number[] {
  const marker = `HANGAR_STATE_DIR=${stateDir}\0`;
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, "latin1").includes(marker);
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    })
    .map(Number);
}

it("npm start stops on SIGTERM: the port closes, it exits 0 and no server process remains", async () => {
  if (!existsSync(path.join(root, ".next", "BUILD_ID"))) throw new Error("no production build of the dashboard: run `npx next build` (scripts/setup.sh does)");
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-service-"));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  // The server's own settings, not whatever the test run was given for its database or origins.
  const { DATABASE_URL: _database, HANGAR_PUBLIC_ORIGIN: _origins, ...inherited } = process.env;
  const child = spawn("npm", ["start"], {
    cwd: root,
    env: { ...inherited, HANGAR_STATE_DIR: stateDir, HOST: "127.0.0.1", PORT: String(port), HANGAR_ACCEL: "tcg" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  cleanups.push(() => {
    for (const pid of processesUsing(stateDir)) process.kill(pid, "SIGKILL");
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );

  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  expect(output).toContain("listening on");
  expect(processesUsing(stateDir)).toContain(child.pid);

  child.kill("SIGTERM");
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(output).toContain("SIGTERM: shutting down");
  expect(await accepts(port)).toBe(false);
  expect(processesUsing(stateDir)).toEqual([]);
});
