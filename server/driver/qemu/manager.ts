/**
 * The qemu implementation of the Manager (seed 000): overlays, cidata, a daemonized qemu
 * with QMP and a serial socket, pid checks through /proc, ACPI stop with a forced fallback.
 * Every process is started with execa and an argv array.
 */
import { chmod, copyFile, mkdir, open, readFile, realpath, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Writable } from "node:stream";
import { execa } from "execa";
import { z } from "zod";
import {
  AlreadyRunningError,
  CommandTimeoutError,
  HANGAR_LOGIN_USER,
  HostPortTakenError,
  NotRunningError,
  SavedStateLoadError,
  DiskHasSnapshotsError,
  DiskShrinkError,
  SnapshotNotFoundError,
  type BlockStats,
  type GuestInterface,
  type GuestMemory,
  type DiskInfo,
  type LoginOptions,
  type Manager,
  type PortForward,
  type ShellOptions,
  type Snapshot,
  type SshIdentity,
  type ShellResult,
  type StartOptions,
  type StartResult,
  type StopOutcome,
} from "../manager.ts";
import { logger } from "../../log.ts";
import { DISK_DRIVE, SNAPSHOT_TAG, USER_NAME, USER_NETDEV, buildQemuArgs, forwardAddress, type Accel } from "./args.ts";
import { queryBlockStats } from "./blockstats.ts";
import { queryGuestMemory } from "./guest-stats.ts";
import { writeCidataIso } from "./cidata.ts";
import { findOvmf } from "./firmware.ts";
import { removeVmFiles, vmFiles, type VmFiles } from "./paths.ts";
import { connectAddress, greetsWithSshBanner, isPortFree, parseUsernetForwards, refusedForward } from "./ports.ts";
import { withQmp, type QmpClient } from "./qmp.ts";
import { generateSshKeyPair } from "./sshkey.ts";
import { guestAgent, parseGuestInterfaces } from "./guest-agent.ts";

const diskInfoJson = z.object({ "virtual-size": z.number(), "actual-size": z.number().optional() });
const snapshotsJson = z.object({
  snapshots: z.array(z.object({ name: z.string(), "vm-state-size": z.number(), "date-sec": z.number(), "date-nsec": z.number().optional() })).optional(),
});

/** The machine family; each start pins the concrete type it resolves to (pc-q35-7.2…). */
export const MACHINE_FAMILY = "q35";
/** The internal snapshot that holds a suspended VM's state. */
export const SUSPEND_TAG = "hangar-suspend";
/** Signals that end a process on someone's say (kill, the OOM killer), not a crash of qemu's own. */
const ENDING_SIGNALS = new Set(["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"]);
const QEMU = "qemu-system-x86_64";
/** How long saving a suspended VM's state may take (all its memory goes into the disk). */
const SAVE_TIMEOUT_MS = 300_000;
/** The user network's gateway; it reaches the host (its loopback) only in nat mode. */
const GUEST_SEES_HOST_AS = "10.0.2.2";

export interface QemuManagerOptions {
  stateDir: string;
  /** Hangar's image store: the only place an overlay's backing file may be. */
  imagesDir: string;
  /** Decides kvm or tcg; called at each start (the decision is cached by its owner). */
  accel: () => Promise<Accel>;
  /** The host address forwards listen on (default 127.0.0.1). */
  forwardAddress?: string;
  /** The user qemu runs as when Hangar runs as root (default hangar-qemu). */
  qemuUser?: string;
}

export const DEFAULT_QEMU_USER = "hangar-qemu";

const knownUsers = new Map<string, Promise<boolean>>();

/**
 * Whom qemu should switch to with -runas: nobody when Hangar is not root (qemu then runs as
 * Hangar's own user), else `user`, which must exist. qemu opens its disks, sockets, logs and
 * pid file first (as root, inside the VM's root-owned 0700 directory), then drops to `user`
 * before the guest runs. Throws when Hangar is root and the user is missing: qemu never runs
 * as root.
 */
export async function qemuRunAs(user = DEFAULT_QEMU_USER): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!USER_NAME.test(user)) throw new Error(`"${user}" is not a user name`);
  let exists = knownUsers.get(user);
  if (!exists) {
    exists = execa("getent", ["passwd", "--", user], { reject: false }).then((r) => r.exitCode === 0 && r.stdout.startsWith(`${user}:`));
    knownUsers.set(user, exists);
  }
  if (!(await exists)) {
    knownUsers.delete(user);
    throw new Error(`Hangar runs as root and will not run qemu as root, but the user ${user} does not exist; scripts/setup.sh creates it`);
  }
  return user;
}

/** The version qemu-system reports ("8.2.2"), or "" when it does not run. */
export async function qemuVersion(): Promise<string> {
  const result = await execa(QEMU, ["--version"], { reject: false, timeout: 10_000 });
  return /version (\S+)/.exec(result.stdout)?.[1] ?? "";
}

export class QemuManager implements Manager {
  readonly files: VmFiles;
  private output: Writable | undefined;

  constructor(
    readonly id: string,
    private readonly options: QemuManagerOptions,
  ) {
    this.files = vmFiles(options.stateDir, id);
  }

  private get forwardAddress(): string {
    return this.options.forwardAddress ?? "127.0.0.1";
  }

  addr(): string {
    return GUEST_SEES_HOST_AS;
  }

  sshHost(): string {
    return connectAddress(this.forwardAddress);
  }

  setOutput(output: Writable): void {
    this.output = output;
  }

  private log(message: string): void {
    this.output?.write(`[hangar ${this.id}] ${message}\n`);
  }

  async create(baseImage: string, baseFormat = "qcow2", sizeBytes?: number): Promise<void> {
    if (await this.exists()) throw new Error(`VM ${this.id} already has a disk at ${this.files.disk}`);
    const backing = await this.storePath(baseImage, baseFormat);
    await mkdir(this.files.dir, { recursive: true, mode: 0o700 });
    await chmod(this.files.dir, 0o700);
    try {
      await execa("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", baseFormat, "--", this.files.disk]);
      // Grown, never shrunk: an overlay smaller than its base would cut the guest's disk.
      if (sizeBytes !== undefined && sizeBytes > (await this.diskInfo()).virtualBytes) {
        await execa("qemu-img", ["resize", "-q", "-f", "qcow2", "--", this.files.disk, String(sizeBytes)]);
      }
      await this.writeNewKeyPair();
      this.log(`created disk on ${baseImage}`);
    } catch (error) {
      await rm(this.files.dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * The backing file an overlay may name: a file of Hangar's image store, by its resolved
   * absolute path (no link in between that could later point elsewhere), and nothing else.
   */
  private async storePath(baseImage: string, baseFormat: string): Promise<string> {
    if (baseFormat !== "qcow2" && baseFormat !== "raw") throw new Error(`base image format ${baseFormat} is not qcow2 or raw`);
    const store = await realpath(this.options.imagesDir).catch(() => undefined);
    const resolved = path.isAbsolute(baseImage) ? await realpath(baseImage).catch(() => undefined) : undefined;
    if (!store || !resolved || path.dirname(resolved) !== store || !(await stat(resolved)).isFile()) {
      throw new Error("the base image is not a file in Hangar's image store; import it again");
    }
    return resolved;
  }

  async exists(): Promise<boolean> {
    return stat(this.files.disk).then(
      () => true,
      () => false,
    );
  }

  async start(options: StartOptions): Promise<StartResult> {
    if (await this.running()) throw new AlreadyRunningError(`VM ${this.id} is already running (pid ${await this.pid()})`);
    await mkdir(this.files.socketDir, { recursive: true, mode: 0o700 });
    await this.removeRuntimeFiles();

    // A VM suspended with its memory in a file resumes from that file; a fresh boot starts
    // from empty memory, in a file only when asked.
    const memoryInFile = options.resume ? await exists(this.files.memory) : options.memoryFile === true;
    if (!options.resume) await rm(this.files.memory, { force: true });
    // A resumed guest booted long ago and reads its seed no more: the ISO it has stays.
    if (!options.resume) {
      await writeCidataIso(this.files.cidata, {
        instanceId: options.instanceId,
        hostname: options.hostname,
        sshAuthorizedKeys: [options.sshAuthorizedKey, ...(options.userAuthorizedKeys ?? [])],
        userData: options.userData,
      });
    }
    const runAs = await qemuRunAs(this.options.qemuUser);
    const firmware = options.firmware ?? "bios";
    const uefiCode = firmware === "uefi" ? await this.prepareUefi() : undefined;
    const accel = await this.options.accel();
    const machine = options.machine ?? (await resolveMachineType(MACHINE_FAMILY));
    const argsFor = async (preferPorts: boolean) =>
      buildQemuArgs({
        id: this.id,
        files: this.files,
        accel,
        machine,
        // Memory in a file: qemu starts paused and the device state is loaded over QMP
        // (a saved state without the memory needs x-ignore-shared set before it loads).
        loadvm: options.resume && !memoryInFile ? SUSPEND_TAG : undefined,
        memoryFile: memoryInFile ? { path: this.files.memory, mapping: options.resume ? "private" : "shared" } : undefined,
        paused: options.resume && memoryInFile,
        cpus: options.cpus,
        memoryMiB: options.memoryMiB,
        diskFormat: "qcow2",
        boot: options.boot,
        firmware,
        uefiCode,
        sshHostPort: await this.hostPortFor(options.sshHostPort, preferPorts ? options.sshPreferredPort : undefined),
        ports: await Promise.all(
          options.ports.map(async (p) => ({ hostPort: await this.hostPortFor(p.hostPort, preferPorts ? p.preferred : undefined), guestPort: p.guestPort })),
        ),
        forwardAddress: this.forwardAddress,
        network: options.network,
        monitor: options.monitor,
        runAs,
        cdrom: options.cdrom,
      });
    // Checked just before the launch: qemu would refuse such a port with its command line as the reason.
    const fixed = [...(options.sshHostPort ? [{ hostPort: options.sshHostPort, guestPort: 22 }] : []), ...options.ports.filter((p) => p.hostPort !== 0)];
    for (const forward of fixed) {
      if (!(await isPortFree(forward.hostPort, this.forwardAddress))) throw new HostPortTakenError(forward.hostPort, forward.guestPort);
    }
    this.log(`starting qemu (${accel}${runAs ? `, as ${runAs}` : ""})`);
    const launchWith = async (args: string[]) => execa(QEMU, args, { reject: false, stdin: "ignore", all: true, timeout: 60_000 });
    let launch = await launchWith(await argsFor(true));
    // A port that was free a moment ago can be taken before qemu binds it: then take free ports.
    if (launch.exitCode !== 0 && /host forwarding rule/i.test(launch.all ?? "") && (options.sshPreferredPort || options.ports.some((p) => p.preferred))) {
      this.log("a port it had before is taken now; starting on free ports");
      await this.removeRuntimeFiles();
      launch = await launchWith(await argsFor(false));
    }
    await writeFile(this.files.launchLog, launch.all ?? "");
    if (launch.exitCode !== 0) {
      await this.forceStop();
      // Once daemonized, qemu reports into its -D log rather than on the launch's output.
      const reported = launch.all || (await readFile(this.files.qemuLog, "utf8").catch(() => "")) || `exit code ${launch.exitCode ?? "unknown"}`;
      // Its output repeats its options (host paths, the command line): the server log keeps it, callers get a sentence.
      logger.warn({ vmId: this.id, exitCode: launch.exitCode, output: reported.slice(0, 4000) }, "qemu failed to start");
      // A fixed port taken between the check above and qemu's bind.
      const taken = refusedForward(reported);
      if (taken) throw new HostPortTakenError(taken.hostPort, taken.guestPort);
      // qemu loads a state saved into the disk (-loadvm) before it daemonizes: exiting on its
      // own then is its refusal of that state. Killed by a signal, it refused nothing.
      if (options.resume && !memoryInFile && typeof launch.exitCode === "number") {
        throw new SavedStateLoadError(`qemu exited with code ${launch.exitCode} while loading it; the server log has its output`);
      }
      // Ended by someone (kill, an OOM killer's SIGKILL), not failed: the VM simply is not running.
      if (launch.signal && ENDING_SIGNALS.has(launch.signal)) throw new NotRunningError(`qemu was ended by ${launch.signal} as it started`);
      const how = launch.signal ? `was ended by ${launch.signal} as it started` : `failed to start (exit code ${launch.exitCode ?? "unknown"})`;
      throw new Error(`qemu ${how}; the server log has its output`);
    }
    try {
      const pid = await this.pid();
      if (pid === 0) throw new NotRunningError("qemu ended as it started");
      const forwards = await withQmp(this.files.qmpSocket, async (qmp) => {
        if (options.resume && memoryInFile) {
          await ignoreSharedMemory(qmp, true);
          await this.loadSavedDevices(qmp);
          // Snapshots taken while it runs must hold the memory again.
          await ignoreSharedMemory(qmp, false);
          await qmp.execute("cont");
        }
        const status = await runStatus(qmp);
        if (status !== "running") throw new Error(`qemu is ${status ?? "in an unknown state"}, not running`);
        const listed = parseUsernetForwards(await qmp.human("info usernet"));
        // The saved state is loaded: the disk need not keep it.
        if (options.resume) await hmp(qmp, `delvm ${SUSPEND_TAG}`);
        return listed;
      });
      const bound = (guestPort: number) => forwards.find((f) => f.guestPort === guestPort)?.hostPort;
      const sshPort = bound(22);
      if (sshPort === undefined) throw new Error("qemu did not bind a host port for SSH");
      const ports = new Map<number, number>();
      for (const forward of options.ports) {
        const hostPort = bound(forward.guestPort);
        if (hostPort !== undefined) ports.set(forward.guestPort, hostPort);
      }
      this.log(`${options.resume ? "resumed" : "running"} as pid ${pid}, SSH on ${this.forwardAddress}:${sshPort}`);
      return { machine, pid, sshPort, ports };
    } catch (error) {
      // Gone before it was asked how it runs (killed once daemonized): it ended, nothing failed
      // here. A saved state qemu refused stays that refusal, whether or not qemu ended over it.
      const ended = !(await this.running().catch(() => true));
      await this.forceStop();
      if (ended && !(error instanceof NotRunningError) && !(error instanceof SavedStateLoadError)) {
        throw new NotRunningError("qemu ended as it started", { cause: error });
      }
      throw error;
    }
  }

  /** A fixed port as asked; with 0, the port it had before while nothing else holds it. */
  private async hostPortFor(hostPort: number, preferred: number | undefined): Promise<number> {
    if (hostPort !== 0 || !preferred) return hostPort;
    return (await isPortFree(preferred, this.forwardAddress)) ? preferred : 0;
  }

  async running(): Promise<boolean> {
    return (await this.pid()) !== 0;
  }

  /** OVMF's code file, after giving the VM its own variable store when it has none yet. */
  private async prepareUefi(): Promise<string> {
    const ovmf = await findOvmf();
    if (!(await exists(this.files.uefiVars))) {
      const partial = `${this.files.uefiVars}.partial`;
      try {
        await execa("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", "--", ovmf.varsTemplate, partial]);
        await rename(partial, this.files.uefiVars);
      } finally {
        await rm(partial, { force: true });
      }
      this.log("created the UEFI variable store");
    }
    return ovmf.code;
  }

  /** The pid in the pid file when that process is alive and is this VM's qemu (not a reused pid). */
  async pid(): Promise<number> {
    const pid = await readPid(this.files.pidFile);
    return (await isOurQemu(pid, this.id)) ? pid : 0;
  }

  async shell(command: string[], sshPort: number, identityFile: string, options: ShellOptions = {}): Promise<ShellResult> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const max = options.maxOutputBytes ?? 1024 * 1024;
    const timeoutMs = options.timeoutMs ?? 60_000;
    const user = options.user ?? HANGAR_LOGIN_USER;
    const argv = options.asRoot && user !== "root" ? ["sudo", "-n", "--", ...command] : command;
    const result = await execa("ssh", [...sshOptions(sshPort, identityFile), "--", `${user}@${this.sshHost()}`, argv.map(shellQuote).join(" ")], {
      reject: false,
      input: options.input ?? "",
      timeout: timeoutMs,
      maxBuffer: max,
      encoding: "utf8",
      stripFinalNewline: false,
    });
    const truncated = Boolean(result.isMaxBuffer);
    // ssh ends with 255 when it is killed too, so the time limit is checked first.
    if (result.timedOut) throw new CommandTimeoutError(timeoutMs);
    if (result.exitCode === 255 && !truncated) throw new Error(`ssh to the VM failed: ${firstLines(result.stderr) || "no reason given"}`);
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1, truncated };
  }

  async console(): Promise<net.Socket> {
    return this.connectUnix(this.files.serialSocket);
  }

  async monitor(): Promise<net.Socket> {
    return this.connectUnix(this.files.monitorSocket);
  }

  async display(): Promise<net.Socket> {
    return this.connectUnix(this.files.vncSocket);
  }

  private async connectUnix(socketPath: string): Promise<net.Socket> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once("connect", () => resolve(socket));
      socket.once("error", reject);
    });
  }

  async sync(
    from: string,
    to: string,
    chown: string | undefined,
    excludes: string[],
    sshPort: number,
    identityFile: string,
    options: LoginOptions = {},
  ): Promise<void> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const user = options.user ?? HANGAR_LOGIN_USER;
    const remoteShell = ["ssh", ...sshOptions(sshPort, identityFile)].map(rsyncQuote).join(" ");
    const viaSudo = (options.asRoot || chown !== undefined) && user !== "root";
    // The error says what rsync said, never its command line (which names host paths).
    const result = await execa(
      "rsync",
      [
        "-a",
        "-e",
        remoteShell,
        ...(viaSudo ? ["--rsync-path=sudo -n rsync"] : []),
        ...(chown ? [`--chown=${chown}`] : []),
        ...excludes.map((pattern) => `--exclude=${pattern}`),
        "--",
        from,
        `${user}@${this.sshHost()}:${to}`,
      ],
      { reject: false, stdin: "ignore" },
    );
    if (result.exitCode === 0) return;
    // Stock cloud images often come without rsync: tar over the same ssh does the copy.
    if (RSYNC_MISSING.test(result.stderr)) return this.syncByTar(from, to, chown, excludes, sshPort, identityFile, user, viaSudo);
    throw new Error(`rsync failed: ${firstLines(result.stderr) || rsyncExit(result.exitCode, result.signal)}`);
  }

  /**
   * sync for a guest without rsync, with rsync's meaning of `from`: "dir/" copies the
   * directory's contents into `to`; "dir" copies it into `to` (made if missing); "file"
   * copies it into `to` when that is a directory, else to the path `to`.
   */
  private async syncByTar(
    from: string,
    to: string,
    chown: string | undefined,
    excludes: string[],
    sshPort: number,
    identityFile: string,
    user: string,
    viaSudo: boolean,
  ): Promise<void> {
    const contents = from.endsWith("/");
    const source = contents ? from.slice(0, -1) : from;
    // As rsync: a directory (without the slash) lands inside `to`, made if missing; only a
    // file may become the path `to` itself.
    const mode = contents ? "contents" : (await stat(source)).isDirectory() ? "dir" : "file";
    const tarArgs = [
      "-c",
      "-f",
      "-",
      ...excludes.map((pattern) => `--exclude=${pattern}`),
      "-C",
      contents ? source : path.dirname(source),
      "--",
      contents ? "." : path.basename(source),
    ];
    // The guest's shell gets its values as positional parameters, quoted, never spliced in.
    const script = [
      'to="$1"; owner="$2"',
      'if [ -d "$to" ] || [ "$3" != file ]; then mkdir -p -- "$to" && tar -x -f - -C "$to"',
      'else mkdir -p -- "$(dirname -- "$to")" && tar -x -O -f - > "$to"; fi',
      'if [ -n "$owner" ]; then chown -R -- "$owner" "$to"; fi',
    ].join("\n");
    const remote = [...(viaSudo ? ["sudo", "-n"] : []), "sh", "-c", script, "sync", to, chown ?? "", mode].map(shellQuote).join(" ");
    const result = await execa("tar", tarArgs, { reject: false, stdin: "ignore" }).pipe(
      "ssh",
      [...sshOptions(sshPort, identityFile), `${user}@${this.sshHost()}`, "--", remote],
      {
        reject: false,
      },
    );
    if (result.exitCode !== 0)
      throw new Error(`copying with tar failed: ${firstLines(result.stderr) || `exit ${result.exitCode ?? result.signal ?? "unknown"}`}`);
  }

  async stop(timeoutMs: number): Promise<StopOutcome> {
    const pid = await this.pid();
    if (pid === 0) throw new NotRunningError(`VM ${this.id} is not running`);
    const started = Date.now();
    const outcome = async (how: StopOutcome["how"], logged: string): Promise<StopOutcome> => {
      await this.afterExit(logged);
      await rm(this.files.memory, { force: true });
      return { how, afterMs: Date.now() - started };
    };
    try {
      // A guest still booting has no ACPI button handler yet and misses a single press:
      // press again every second until it powers off or the time is up.
      const deadline = Date.now() + timeoutMs;
      const ran = await withQmp(this.files.qmpSocket, async (qmp) => {
        const status = await runStatus(qmp);
        // Started paused for a resume that never loaded: no guest runs there to shut down.
        if (status === "prelaunch" || status === "inmigrate") return false;
        // A paused guest (a pool's Paused staging) cannot see the button until it runs again.
        if (status === "paused") await qmp.execute("cont");
        await qmp.execute("system_powerdown");
        return true;
      });
      if (!ran) {
        this.log("its guest never ran (a resume not loaded), quitting");
        await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("quit")).catch(() => undefined);
        if (await waitForExit(pid, 3000)) return outcome("quit", "quit");
        throw new Error("qemu did not quit");
      }
      this.log("sent the ACPI power button");
      while (!(await waitForExit(pid, Math.min(1000, Math.max(0, deadline - Date.now()))))) {
        if (Date.now() >= deadline) break;
        // Fails only as qemu exits, which the next wait sees.
        await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("system_powerdown")).catch(() => undefined);
      }
      if (!(await processAlive(pid))) return outcome("powered-off", "powered off");
      this.log(`no power-off within ${timeoutMs} ms, quitting`);
      await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("quit")).catch(() => undefined);
      if (await waitForExit(pid, 3000)) return outcome("quit", "quit");
    } catch (error) {
      this.log(`QMP failed (${String(error)}), killing`);
    }
    await this.forceStop();
    return { how: "killed", afterMs: Date.now() - started };
  }

  async delete(): Promise<void> {
    if (await this.running()) throw new AlreadyRunningError(`VM ${this.id} is running; stop it before deleting`);
    await removeVmFiles(this.files);
  }

  async pause(): Promise<void> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("stop"));
  }

  async unpause(): Promise<void> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("cont"));
  }

  async suspend(): Promise<void> {
    const pid = await this.pid();
    if (pid === 0) throw new NotRunningError(`VM ${this.id} is not running`);
    // Memory qemu maps shared from a file stays there: the saved state is the devices' alone
    // (about 1 MB). A resumed VM maps it privately, and its memory is saved with them.
    const memoryInFile = await exists(this.files.memory);
    await withQmp(this.files.qmpSocket, async (qmp) => {
      await qmp.execute("stop");
      try {
        if (memoryInFile) await ignoreSharedMemory(qmp, true);
        await hmp(qmp, `savevm ${SUSPEND_TAG}`, SAVE_TIMEOUT_MS);
      } catch (error) {
        if (memoryInFile) await ignoreSharedMemory(qmp, false).catch(() => undefined);
        await qmp.execute("cont").catch(() => undefined);
        throw error;
      }
      await qmp.execute("quit").catch(() => undefined);
    });
    if (!(await waitForExit(pid, 10_000))) await this.forceStop();
    if (memoryInFile) await this.persistMemory();
    await this.afterExit("suspended");
  }

  /** The memory of a suspended VM, on disk before the suspend counts as done (it is the saved state). */
  private async persistMemory(): Promise<void> {
    const file = await open(this.files.memory, "r");
    try {
      await file.sync();
    } finally {
      await file.close();
    }
  }

  async discardSuspendedState(): Promise<void> {
    await rm(this.files.memory, { force: true });
    if (await this.hasSnapshot(SUSPEND_TAG)) await execa("qemu-img", ["snapshot", "-d", SUSPEND_TAG, "--", this.files.disk]);
    // savevm snapshotted the UEFI variable store too.
    if ((await snapshotsOf(this.files.uefiVars)).some((s) => s.name === SUSPEND_TAG)) {
      await execa("qemu-img", ["snapshot", "-d", SUSPEND_TAG, "--", this.files.uefiVars]);
    }
  }

  /** loadvm of the saved devices; an error qemu answers while it runs on is its refusal of that state. */
  private async loadSavedDevices(qmp: QmpClient): Promise<void> {
    try {
      await hmp(qmp, `loadvm ${SUSPEND_TAG}`, SAVE_TIMEOUT_MS);
    } catch (error) {
      if (!(await this.running())) throw error;
      // Its answer can name the disk's path: the server log keeps it, callers get a sentence.
      logger.warn({ vmId: this.id, err: error }, "qemu refused the saved state");
      throw new SavedStateLoadError("qemu refused it; the server log has its answer");
    }
  }

  async finishResume(): Promise<void> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const saved = await this.hasSnapshot(SUSPEND_TAG);
    const memoryInFile = await exists(this.files.memory);
    await withQmp(
      this.files.qmpSocket,
      async (qmp) => {
        const status = await runStatus(qmp);
        // Started paused with its memory in a file, its devices not loaded yet: continuing now
        // would boot the guest afresh over the saved memory, so load them first.
        if (status === "prelaunch" && saved && memoryInFile) {
          await ignoreSharedMemory(qmp, true);
          await this.loadSavedDevices(qmp);
          await ignoreSharedMemory(qmp, false);
        }
        if (status !== "running") await qmp.execute("cont");
        if (saved) await hmp(qmp, `delvm ${SUSPEND_TAG}`);
      },
      SAVE_TIMEOUT_MS,
    );
  }

  async suspendedStateSavedAt(): Promise<Date | undefined> {
    return (await this.readSnapshots()).find((s) => s.name === SUSPEND_TAG && s.vmStateBytes > 0)?.createdAt;
  }

  async settleSuspend(since: Date): Promise<"suspended" | "resumed"> {
    const pid = await this.pid();
    if (pid === 0) throw new NotRunningError(`VM ${this.id} is not running`);
    // A savevm still under way holds qemu's main loop: QMP answers once it is done.
    const status = await withQmp(this.files.qmpSocket, (qmp) => runStatus(qmp, SAVE_TIMEOUT_MS), SAVE_TIMEOUT_MS);
    // suspend() pauses the guest before it saves: a running guest never got that far, and
    // a saved state older than the interrupted suspend is not this suspend's.
    const savedAt = status === "running" ? undefined : await this.suspendedStateSavedAt();
    if (savedAt && savedAt >= since) {
      await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("quit")).catch(() => undefined);
      if (!(await waitForExit(pid, 10_000))) await this.forceStop();
      if (await exists(this.files.memory)) await this.persistMemory();
      await this.afterExit("suspended (an interrupted suspend carried out)");
      return "suspended";
    }
    await withQmp(this.files.qmpSocket, async (qmp) => {
      // The suspend may have got as far as leaving the memory out of saves.
      await ignoreSharedMemory(qmp, false);
      if (status !== "running") await qmp.execute("cont");
    });
    this.log("an interrupted suspend rolled back: the guest runs on");
    return "resumed";
  }

  async cloneFrom(sourceVmId: string): Promise<void> {
    const source = vmFiles(this.options.stateDir, sourceVmId);
    if (await isOurQemu(await readPid(source.pidFile), sourceVmId)) throw new AlreadyRunningError(`VM ${sourceVmId} is running; stop it before cloning`);
    if (await this.exists()) throw new Error(`VM ${this.id} already has a disk at ${this.files.disk}`);
    await mkdir(this.files.dir, { recursive: true, mode: 0o700 });
    await chmod(this.files.dir, 0o700);
    try {
      // A copy of the source's overlay: same base image, its own file. Neither the source's
      // snapshots nor its saved state come along (they hold the source's memory): clones
      // start with none and boot fresh.
      await copyFile(source.disk, this.files.disk);
      // The UEFI variables belong with the disk. Neither keeps the source's snapshots.
      if (await exists(source.uefiVars)) await copyFile(source.uefiVars, this.files.uefiVars);
      for (const file of [this.files.disk, this.files.uefiVars]) {
        if (!(await exists(file))) continue;
        for (const snapshot of await snapshotsOf(file)) await execa("qemu-img", ["snapshot", "-d", snapshot.name, "--", file]);
      }
      await this.writeNewKeyPair();
      this.log(`cloned disk of VM ${sourceVmId}`);
    } catch (error) {
      await rm(this.files.dir, { recursive: true, force: true });
      throw error;
    }
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return (await this.readSnapshots()).filter((s) => s.name !== SUSPEND_TAG);
  }

  async createSnapshot(name: string): Promise<void> {
    await this.onDiskOrLive(name, ["-c"], (qmp) => hmp(qmp, `savevm ${name}`, 300_000));
  }

  async revertSnapshot(name: string): Promise<void> {
    const snapshot = (await this.listSnapshots()).find((s) => s.name === name);
    if (!snapshot) throw new SnapshotNotFoundError(name);
    await this.onDiskOrLive(name, ["-a"], async (qmp) => {
      if (snapshot.vmStateBytes === 0) {
        throw new Error(`snapshot "${name}" was taken while the VM was stopped; stop the VM to revert to it`);
      }
      await hmp(qmp, `loadvm ${name}`, 300_000);
    });
  }

  async deleteSnapshot(name: string): Promise<void> {
    if (!(await this.listSnapshots()).some((s) => s.name === name)) throw new SnapshotNotFoundError(name);
    await this.onDiskOrLive(name, ["-d"], (qmp) => hmp(qmp, `delvm ${name}`));
  }

  /** qemu-img on the file when stopped; the running qemu (which holds the disk) otherwise. */
  private async onDiskOrLive(name: string, qemuImgFlag: string[], live: (qmp: QmpClient) => Promise<unknown>): Promise<void> {
    if (!SNAPSHOT_TAG.test(name) || name.startsWith("hangar-")) throw new Error(`"${name}" is not a valid snapshot name`);
    if (await this.running()) {
      await withQmp(this.files.qmpSocket, async (qmp) => {
        // A snapshot of a VM whose memory is a file holds that memory too (a suspend or a
        // resume cut short may have left it out).
        await ignoreSharedMemory(qmp, false);
        await live(qmp);
      });
      return;
    }
    await execa("qemu-img", ["snapshot", ...qemuImgFlag, name, "--", this.files.disk]);
  }

  private async readSnapshots(): Promise<Snapshot[]> {
    return snapshotsOf(this.files.disk);
  }

  private async hasSnapshot(name: string): Promise<boolean> {
    return (await this.readSnapshots()).some((s) => s.name === name);
  }

  private async writeNewKeyPair(): Promise<void> {
    const keys = generateSshKeyPair(`hangar-${this.id}`);
    await writeFile(this.files.sshKey, keys.privateKey, { mode: 0o600 });
    await writeFile(this.files.sshPublicKey, `${keys.publicKey}\n`, { mode: 0o600 });
  }

  async identity(): Promise<SshIdentity> {
    const [privateKey, publicKey] = await Promise.all([readFile(this.files.sshKey, "utf8"), readFile(this.files.sshPublicKey, "utf8")]);
    return { privateKeyFile: this.files.sshKey, privateKey, publicKey: publicKey.trim() };
  }

  async sshAnswers(sshPort: number): Promise<boolean> {
    return greetsWithSshBanner(sshPort, this.sshHost());
  }

  async forwards(): Promise<PortForward[]> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const text = await withQmp(this.files.qmpSocket, (qmp) => qmp.human("info usernet"));
    return parseUsernetForwards(text);
  }

  async blockStats(): Promise<BlockStats> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    return queryBlockStats(this.files.qmpSocket);
  }

  async guestMemory(): Promise<GuestMemory | null> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    return queryGuestMemory(this.files.qmpSocket);
  }

  async addForward(forward: PortForward): Promise<number> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const rule = `tcp:${forwardAddress(this.forwardAddress)}:${forward.hostPort}-:${forward.guestPort}`;
    return withQmp(this.files.qmpSocket, async (qmp) => {
      // hostfwd_add prints nothing on success and the reason otherwise.
      const output = (await qmp.human(`hostfwd_add ${USER_NETDEV} ${rule}`)).trim();
      if (output) throw new Error(`host port ${forward.hostPort} could not be forwarded: ${output}`);
      const bound = parseUsernetForwards(await qmp.human("info usernet")).filter((f) => f.guestPort === forward.guestPort);
      const hostPort = forward.hostPort !== 0 ? forward.hostPort : bound[bound.length - 1]?.hostPort;
      if (hostPort === undefined) throw new Error(`qemu did not bind a host port for guest port ${forward.guestPort}`);
      return hostPort;
    });
  }

  async removeForward(hostPort: number): Promise<void> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    await withQmp(this.files.qmpSocket, async (qmp) => {
      const output = (await qmp.human(`hostfwd_remove ${USER_NETDEV} tcp:${forwardAddress(this.forwardAddress)}:${hostPort}`)).trim();
      if (output && !/removed/i.test(output)) throw new Error(`the forward of host port ${hostPort} could not be removed: ${output}`);
    });
  }

  async diskInfo(): Promise<DiskInfo> {
    // -U: read the sizes even while the running qemu holds the disk's lock.
    const { stdout } = await execa("qemu-img", ["info", "-U", "--output=json", "--", this.files.disk]);
    const info = diskInfoJson.parse(JSON.parse(stdout));
    return { virtualBytes: info["virtual-size"], actualBytes: info["actual-size"] ?? 0 };
  }

  async exportDisk(target: string): Promise<void> {
    if (await this.running()) throw new AlreadyRunningError(`VM ${this.id} is running; stop it before making an image of its disk`);
    // The active layer with its backing chain folded in; internal snapshots stay behind.
    await execa("qemu-img", ["convert", "-q", "-f", "qcow2", "-O", "qcow2", "--", this.files.disk, target], { timeout: 6 * 3600_000 });
  }

  async resizeDisk(sizeBytes: number): Promise<void> {
    const { virtualBytes } = await this.diskInfo();
    if (sizeBytes < virtualBytes) throw new DiskShrinkError(virtualBytes);
    if ((await this.readSnapshots()).length > 0) throw new DiskHasSnapshotsError();
    if (sizeBytes === virtualBytes) return;
    if (await this.running()) {
      // qemu grows the file and tells virtio-blk: the guest sees the new size at once.
      await withQmp(this.files.qmpSocket, (qmp) => qmp.execute("block_resize", { device: DISK_DRIVE, size: sizeBytes }, 60_000));
      return;
    }
    await execa("qemu-img", ["resize", "-q", "-f", "qcow2", "--", this.files.disk, String(sizeBytes)]);
  }

  async syncGuestClock(): Promise<boolean> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    try {
      // guest-set-time with a time sets the guest's clock (and its RTC) to it, in nanoseconds.
      await guestAgent(this.files.guestAgentSocket, [{ execute: "guest-set-time", arguments: { time: Date.now() * 1_000_000 } }]);
      this.log("guest clock set through the guest agent");
      return true;
    } catch {
      return false;
    }
  }

  async guestInterfaces(): Promise<GuestInterface[] | null> {
    if (!(await this.running())) throw new NotRunningError(`VM ${this.id} is not running`);
    const [answer] = await guestAgent(this.files.guestAgentSocket, [{ execute: "guest-network-get-interfaces" }], 2000).catch(() => []);
    return parseGuestInterfaces(answer) ?? null;
  }

  async kill(): Promise<void> {
    await this.forceStop();
  }

  async serialTail(maxBytes: number): Promise<string> {
    const handle = await open(this.files.serialLog, "r").catch(() => undefined);
    if (!handle) return "";
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  }

  /** SIGKILL whatever runs, wait for it to go, and clear the runtime files. */
  private async forceStop(): Promise<void> {
    const pid = await this.pid();
    if (pid !== 0) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      await waitForExit(pid, 5000);
    }
    await this.afterExit("killed");
  }

  private async afterExit(how: string): Promise<void> {
    this.log(`qemu ${how}`);
    await this.removeRuntimeFiles();
  }

  private async removeRuntimeFiles(): Promise<void> {
    for (const file of [this.files.pidFile, this.files.qmpSocket, this.files.serialSocket, this.files.monitorSocket, this.files.vncSocket]) {
      await unlink(file).catch(() => undefined);
    }
  }
}

const statusJson = z.object({ status: z.string() });

/** qemu's run state ("running", "paused", "prelaunch", ...); undefined if it answers something else. */
async function runStatus(qmp: QmpClient, timeoutMs?: number): Promise<string | undefined> {
  const parsed = statusJson.safeParse(await qmp.execute("query-status", undefined, timeoutMs));
  return parsed.success ? parsed.data.status : undefined;
}

/** An HMP command whose output is empty on success and the error text otherwise. */
async function hmp(qmp: QmpClient, command: string, timeoutMs = 30_000): Promise<void> {
  const output = (await qmp.human(command, timeoutMs)).trim();
  if (output) throw new Error(`${command.split(" ")[0]} failed: ${output}`);
}

let machineTypes: Promise<Map<string, string>> | undefined;

/** The concrete machine type an alias stands for on this qemu ("q35" -> "pc-q35-7.2"). */
export async function resolveMachineType(alias: string): Promise<string> {
  machineTypes ??= execa(QEMU, ["-machine", "help"]).then(({ stdout }) => {
    const aliases = new Map<string, string>();
    for (const match of stdout.matchAll(/^(\S+)\s+.*\(alias of (\S+)\)\s*$/gm)) {
      if (match[1] && match[2]) aliases.set(match[1], match[2]);
    }
    return aliases;
  });
  return (await machineTypes).get(alias) ?? alias;
}

/** The internal snapshots of a qcow2 file; none when the file does not exist. */
async function snapshotsOf(file: string): Promise<Snapshot[]> {
  if (!(await exists(file))) return [];
  // -U: read the snapshot table even while the running qemu holds the file's lock.
  const { stdout } = await execa("qemu-img", ["info", "-U", "--output=json", "--", file]);
  const info = snapshotsJson.parse(JSON.parse(stdout));
  return (info.snapshots ?? []).map((s) => ({
    name: s.name,
    vmStateBytes: s["vm-state-size"],
    // To the millisecond: the reconciler tells a suspend's own saved state from an older one.
    createdAt: new Date(s["date-sec"] * 1000 + Math.floor((s["date-nsec"] ?? 0) / 1e6)),
  }));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readPid(pidFile: string): Promise<number> {
  const pid = Number.parseInt((await readFile(pidFile, "utf8").catch(() => "")).trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

async function isOurQemu(pid: number, id: string): Promise<boolean> {
  if (pid === 0) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
  if (!cmdline.split("\0").includes(`hangar-${id}`)) return false;
  // A zombie still has its cmdline only briefly; a dead pid has none.
  const status = await readFile(`/proc/${pid}/stat`, "latin1").catch(() => "");
  return !/\) Z /.test(status);
}

/**
 * x-ignore-shared: while on, savevm leaves out memory qemu maps shared from a file
 * (memory-backend-file, share=on), which is where that memory already is. A load sets it as
 * the save did: the saved stream's layout depends on it.
 */
async function ignoreSharedMemory(qmp: QmpClient, on: boolean): Promise<void> {
  await qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: on }] });
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await processAlive(pid))) return true;
    await sleep(100);
  }
  return !(await processAlive(pid));
}

async function processAlive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/stat`, "latin1").catch(() => "");
  return status !== "" && !/\) Z /.test(status);
}

export function sshOptions(port: number, identityFile: string): string[] {
  return [
    "-p",
    String(port),
    "-i",
    identityFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
  ];
}

/** One word for the guest's POSIX shell. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./=:@%+-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** rsync splits -e on spaces and honours double quotes. */
/** What rsync says when the guest has none. */
const RSYNC_MISSING = /rsync: (command )?not found/;

function rsyncQuote(word: string): string {
  return /[\s"']/.test(word) ? `"${word.replaceAll('"', '\\"')}"` : word;
}

/**
 * What an rsync that printed nothing failed with (man rsync, EXIT VALUES). Under load the
 * guest's rsync can end before its own message reaches this side; its exit code still does.
 */
function rsyncExit(code: number | undefined, signal: string | undefined): string {
  const meaning: Record<number, string> = {
    11: "error in file I/O, for example a destination the login user may not write (asRoot syncs as root)",
    12: "error in the rsync protocol data stream",
    23: "some files could not be transferred",
    255: "ssh to the guest failed",
  };
  if (code === undefined) return `ended by ${signal ?? "an unknown cause"}`;
  return `exit ${code}${meaning[code] ? `: ${meaning[code]}` : ""}`;
}

function firstLines(text: string): string {
  return text.trim().split("\n").slice(0, 5).join(" | ").slice(0, 600);
}
