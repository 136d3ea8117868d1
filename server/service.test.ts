// Running Hangar as a service: `npm start` is the server itself (the script execs node), so
// a SIGTERM sent to the pid that was started reaches the server, which closes its port and
// exits 0 with nothing left behind. Needs the dashboard's production build (setup builds it).
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { execa } from "execa";
import { afterEach, expect, it } from "vitest";
import { z } from "zod";
import { vmFiles } from "./driver/qemu/paths.ts";
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

/** `npm start` on a fresh state directory, with `env` added; resolves once it listens. */
async function startServer(env: Record<string, string>) {
  if (!existsSync(path.join(root, ".next", "BUILD_ID"))) throw new Error("no production build of the dashboard: run `npx next build` (scripts/setup.sh does)");
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "hangar-service-"));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  // The server's own settings, not whatever the test run was given for its database or origins.
  const { DATABASE_URL: _database, HANGAR_PUBLIC_ORIGIN: _origins, ...inherited } = process.env;
  const child = spawn("npm", ["start"], {
    cwd: root,
    env: { ...inherited, HANGAR_STATE_DIR: stateDir, HOST: "127.0.0.1", PORT: String(port), HANGAR_ACCEL: "tcg", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  cleanups.push(() => {
    for (const pid of processesUsing(stateDir)) process.kill(pid, "SIGKILL");
  });
  const server = { child, stateDir, port, output: "" };
  child.stdout.on("data", (chunk: Buffer) => (server.output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (server.output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${server.output}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { ...server, exited, output: () => server.output };
}

it("npm start stops on SIGTERM: the port closes, it exits 0 and no server process remains", async () => {
  const { child, stateDir, port, exited, output } = await startServer({});
  // The port can accept before the log line that says so has come through the pipe.
  await expect.poll(output, { timeout: 10_000 }).toContain("listening on");
  expect(processesUsing(stateDir)).toContain(child.pid);

  child.kill("SIGTERM");
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(output()).toContain("SIGTERM: shutting down; VMs keep running");
  expect(await accepts(port)).toBe(false);
  expect(processesUsing(stateDir)).toEqual([]);
});

it("stops the running VMs through their power button when the machine shuts down, before it exits", async () => {
  // systemd answers "stopping" while the machine shuts down or reboots.
  const bin = mkdtempSync(path.join(os.tmpdir(), "hangar-systemctl-"));
  cleanups.push(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(path.join(bin, "systemctl"), '#!/bin/sh\n[ "$1" = is-system-running ] && { echo stopping; exit 1; }\nexit 1\n');
  chmodSync(path.join(bin, "systemctl"), 0o755);
  const admin = { email: "admin@service.test", password: "a long admin password" };
  const guestDir = process.env.HANGAR_GUEST_DIR ?? path.join(root, "data", "images", "hangar-tiny");
  const { child, stateDir, port, exited, output } = await startServer({
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    HANGAR_GUEST_DIR: guestDir,
    HANGAR_ADMIN_EMAIL: admin.email,
    HANGAR_ADMIN_PASSWORD: admin.password,
  });
  const configHome = path.join(stateDir, "cli");
  mkdirSync(configHome);
  const hangar = (args: string[], input?: string) =>
    execa(process.execPath, [path.join(root, "bin", "hangar.mjs"), ...args], {
      env: { XDG_CONFIG_HOME: configHome, HANGAR_URL: "", HANGAR_TOKEN: "" },
      input,
      reject: false,
    });
  const login = await hangar(["login", `http://127.0.0.1:${port}`, "--email", admin.email, "--password-stdin"], `${admin.password}\n`);
  expect(login.exitCode, login.stderr).toBe(0);
  const created = await hangar(["create", "web", "--image", "hangar-tiny", "--memory", "128", "--start"]);
  expect(created.exitCode, created.stderr).toBe(0);
  // Ready: the guest's init, and with it the power button's handler, is up.
  const ready = await hangar(["wait", "web", "--timeout", "240"]);
  expect(ready.exitCode, ready.stderr).toBe(0);

  child.kill("SIGTERM");
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(output()).toContain("the machine is shutting down; stopping this host's VMs first");
  expect(output()).toContain("stopped for the shutdown: web");
  // qemu is gone with the server, and the guest shut itself down: it was not killed.
  expect(processesUsing(stateDir)).toEqual([]);
  const db = new Database(path.join(stateDir, "hangar.db"), { readonly: true });
  cleanups.push(() => db.close());
  const vm = z.object({ id: z.string(), state: z.string() }).parse(db.prepare("SELECT id, state FROM Vm WHERE name = ?").get("web"));
  expect(vm.state).toBe("Stopped");
  const stop = db.prepare("SELECT actor, ok, message FROM Event WHERE vmId = ? AND action = 'stop'").get(vm.id);
  expect(stop).toMatchObject({ actor: "host shutdown", ok: 1 });
  expect(readFileSync(vmFiles(stateDir, vm.id).serialLog, "utf8")).toContain("power button pressed, powering off");
}, 300_000);
