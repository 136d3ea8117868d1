/**
 * An in-memory Manager for unit tests of the layers above the driver: it records calls,
 * can be told to fail, and can hold a start open to let a race happen.
 */
import net from "node:net";
import { execa } from "execa";
import { setTimeout as sleep } from "node:timers/promises";
import {
  AlreadyRunningError,
  type BlockStats,
  type GuestInterface,
  type GuestMemory,
  DiskHasSnapshotsError,
  DiskShrinkError,
  NotRunningError,
  SnapshotNotFoundError,
  type Manager,
  type PortForward,
  type ShellOptions,
  type ShellResult,
  type StartOptions,
  type StartResult,
  type StopOutcome,
} from "../driver/manager.ts";
import type { ImageFiles } from "../images/copies.ts";
import { READY_PROBE } from "../vms/readiness.ts";
import { INSTALL_KEYS_COMMAND } from "../auth/ssh-keys.ts";

/** The virtual size of every fake base image. */
export const FAKE_IMAGE_BYTES = 1024 ** 3;

export interface FakeVm {
  exists: boolean;
  running: boolean;
  /** A suspend saved state that start({resume}) restores. */
  saved: boolean;
  /** When it was saved; absent: just now. */
  savedAt?: Date;
  snapshots: string[];
  clonedFrom?: string;
  pid: number;
  calls: string[];
  lastStart?: StartOptions;
  /** What the last stop gave the guest after the power button. */
  lastStopTimeoutMs?: number;
  /** Forwards added while running, beyond those of the start. */
  added: PortForward[];
  diskBytes: number;
  /** Every command run through shell(), with its options. */
  shells: { command: string[]; options: ShellOptions }[];
  /** What the guest answers to the readiness probe (READY_PROBE). */
  cloudInitStatus: string;
  /** Its CPUs stopped by pause(), until unpause() or the process ends. */
  paused?: boolean;
  /** Disk I/O counters blockStats() reports; tests move them. */
  blockStats: BlockStats;
  /** What guestMemory() reports (null: the guest reports nothing); tests set it. */
  guestMemory: GuestMemory | null;
  /** What guestInterfaces() reports (null: no guest agent answers); tests set it. */
  guestInterfaces: GuestInterface[] | null;
  /** What the guest printed on its serial console (serialTail() returns its end); tests set it. */
  serialLog: string;
}

export const CLOUD_INIT_DONE = '{"status": "done", "errors": []}';

/** A fake driver takes any path: its VMs' image rows name files that are in no store. */
export async function fakeLocalImage(image: ImageFiles) {
  return { path: image.path, kernel: image.kernel, initrd: image.initrd };
}

export class FakeDriver {
  readonly vms = new Map<string, FakeVm>();
  /** Method name -> error to throw once. */
  readonly failNext = new Map<string, Error>();
  /** Method name -> error to throw every time, until removed. */
  readonly failAlways = new Map<string, Error>();
  /** What a new VM's guest answers to the readiness probe. */
  cloudInitStatus = CLOUD_INIT_DONE;
  startDelayMs = 0;
  /** How the next stops end (a guest that ignores the power button: "killed"). */
  stopHow: StopOutcome["how"] = "powered-off";
  suspendDelayMs = 0;
  /** How long taking a snapshot takes (a race with it needs time). */
  snapshotDelayMs = 0;
  private nextPid = 1000;

  vm(id: string): FakeVm {
    let vm = this.vms.get(id);
    if (!vm) {
      vm = {
        exists: false,
        running: false,
        saved: false,
        snapshots: [],
        pid: 0,
        calls: [],
        added: [],
        diskBytes: 0,
        shells: [],
        cloudInitStatus: this.cloudInitStatus,
        blockStats: { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 },
        guestMemory: null,
        guestInterfaces: null,
        serialLog: "",
      };
      this.vms.set(id, vm);
    }
    return vm;
  }

  private maybeFail(method: string): void {
    const always = this.failAlways.get(method);
    if (always) throw always;
    const error = this.failNext.get(method);
    if (error) {
      this.failNext.delete(method);
      throw error;
    }
  }

  managerFor = (id: string): Manager => {
    const vm = this.vm(id);
    const requireRunning = () => {
      if (!vm.running) throw new NotRunningError();
    };
    return {
      addr: () => "10.0.2.2",
      sshHost: () => "127.0.0.1",
      setOutput: () => undefined,
      create: async (_base, _format, sizeBytes) => {
        vm.calls.push("create");
        this.maybeFail("create");
        vm.exists = true;
        vm.diskBytes = Math.max(sizeBytes ?? 0, FAKE_IMAGE_BYTES);
      },
      diskInfo: async () => ({ virtualBytes: vm.diskBytes, actualBytes: 1024 * 1024 }),
      resizeDisk: async (sizeBytes) => {
        vm.calls.push("resize");
        this.maybeFail("resizeDisk");
        if (sizeBytes < vm.diskBytes) throw new DiskShrinkError(vm.diskBytes);
        if (vm.snapshots.length > 0) throw new DiskHasSnapshotsError();
        vm.diskBytes = sizeBytes;
      },
      // A real qcow2 of the disk's size (empty): the image store inspects what it is given.
      exportDisk: async (target) => {
        vm.calls.push("export");
        this.maybeFail("export");
        if (vm.running) throw new AlreadyRunningError();
        await execa("qemu-img", ["create", "-q", "-f", "qcow2", "--", target, String(vm.diskBytes)]);
      },
      syncGuestClock: async () => {
        vm.calls.push("clock");
        if (!vm.running) throw new NotRunningError();
        return false;
      },
      exists: async () => vm.exists,
      start: async (options): Promise<StartResult> => {
        vm.calls.push(options.resume ? "resume" : "start");
        if (vm.running) throw new AlreadyRunningError();
        if (this.startDelayMs) await sleep(this.startDelayMs);
        this.maybeFail("start");
        if (options.resume && !vm.saved) throw new Error("no saved state to resume from");
        vm.saved = false;
        vm.running = true;
        vm.paused = false;
        vm.pid = this.nextPid++;
        vm.lastStart = options;
        return {
          machine: options.machine ?? "pc-q35-fake",
          pid: vm.pid,
          sshPort: 40000 + vm.pid,
          ports: new Map(options.ports.map((p) => [p.guestPort, p.hostPort || 50000 + p.guestPort])),
        };
      },
      running: async () => vm.running,
      pid: async () => (vm.running ? vm.pid : 0),
      shell: async (command, _port, _identity, options = {}): Promise<ShellResult> => {
        requireRunning();
        vm.shells.push({ command, options });
        const line = command.join(" ");
        // The key install answers how many keys it appended: here, every line it was given.
        const keysGiven = (options.input ?? "").split("\n").filter(Boolean).length;
        const stdout = line === READY_PROBE.join(" ") ? vm.cloudInitStatus : line === INSTALL_KEYS_COMMAND.join(" ") ? String(keysGiven) : line;
        return { stdout, stderr: "", exitCode: 0, truncated: false };
      },
      console: async () => {
        requireRunning();
        return new net.Socket();
      },
      monitor: async () => {
        requireRunning();
        return new net.Socket();
      },
      display: async () => {
        requireRunning();
        return new net.Socket();
      },
      sync: async () => {
        requireRunning();
        this.maybeFail("sync");
      },
      stop: async (timeoutMs) => {
        vm.calls.push("stop");
        vm.lastStopTimeoutMs = timeoutMs;
        requireRunning();
        this.maybeFail("stop");
        vm.running = false;
        vm.pid = 0;
        vm.added = [];
        return { how: this.stopHow, afterMs: 0 };
      },
      delete: async () => {
        vm.calls.push("delete");
        this.maybeFail("delete");
        vm.exists = false;
      },
      identity: async () => ({
        privateKeyFile: `/fake/${id}/id_ed25519`,
        privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\nfake-${id}\n-----END OPENSSH PRIVATE KEY-----\n`,
        publicKey: `ssh-ed25519 AAAA fake-${id}`,
      }),
      sshAnswers: async () => vm.running,
      forwards: async (): Promise<PortForward[]> => {
        requireRunning();
        return [{ hostPort: 40000 + vm.pid, guestPort: 22 }, ...vm.added];
      },
      addForward: async (forward) => {
        vm.calls.push(`forward+${forward.guestPort}`);
        requireRunning();
        this.maybeFail("addForward");
        const hostPort = forward.hostPort || 50000 + forward.guestPort;
        vm.added.push({ hostPort, guestPort: forward.guestPort });
        return hostPort;
      },
      removeForward: async (hostPort) => {
        vm.calls.push(`forward-${hostPort}`);
        requireRunning();
        vm.added = vm.added.filter((f) => f.hostPort !== hostPort);
      },
      kill: async () => {
        vm.calls.push("kill");
        vm.running = false;
        vm.pid = 0;
      },
      serialTail: async (maxBytes) => vm.serialLog.slice(-maxBytes),
      pause: async () => {
        vm.calls.push("pause");
        requireRunning();
        this.maybeFail("pause");
        vm.paused = true;
      },
      unpause: async () => {
        vm.calls.push("unpause");
        requireRunning();
        this.maybeFail("unpause");
        vm.paused = false;
      },
      // Not in `calls`: the sampler asks every few seconds.
      blockStats: async () => {
        requireRunning();
        return { ...vm.blockStats };
      },
      guestMemory: async () => {
        requireRunning();
        return vm.guestMemory && { ...vm.guestMemory };
      },
      guestInterfaces: async () => {
        requireRunning();
        return vm.guestInterfaces && structuredClone(vm.guestInterfaces);
      },
      suspend: async () => {
        vm.calls.push("suspend");
        requireRunning();
        if (this.suspendDelayMs) await sleep(this.suspendDelayMs);
        this.maybeFail("suspend");
        vm.saved = true;
        vm.savedAt = new Date();
        vm.running = false;
        vm.pid = 0;
      },
      discardSuspendedState: async () => {
        vm.calls.push("discard");
        vm.saved = false;
      },
      suspendedStateSavedAt: async () => (vm.saved ? (vm.savedAt ?? new Date()) : undefined),
      finishResume: async () => {
        vm.calls.push("finish-resume");
        requireRunning();
        this.maybeFail("finishResume");
        vm.paused = false;
        vm.saved = false;
      },
      settleSuspend: async (since) => {
        vm.calls.push("settle-suspend");
        requireRunning();
        if (!vm.saved || (vm.savedAt ?? new Date()) < since) return "resumed";
        vm.running = false;
        vm.pid = 0;
        return "suspended";
      },
      cloneFrom: async (sourceVmId) => {
        vm.calls.push("cloneFrom");
        this.maybeFail("create");
        if (this.vm(sourceVmId).running) throw new AlreadyRunningError();
        vm.exists = true;
        vm.clonedFrom = sourceVmId;
        vm.diskBytes = this.vm(sourceVmId).diskBytes;
      },
      listSnapshots: async () => vm.snapshots.map((name) => ({ name, vmStateBytes: vm.running ? 1 : 0, createdAt: new Date(0) })),
      createSnapshot: async (name) => {
        await sleep(this.snapshotDelayMs);
        this.maybeFail("createSnapshot");
        vm.snapshots.push(name);
      },
      revertSnapshot: async (name) => {
        if (!vm.snapshots.includes(name)) throw new SnapshotNotFoundError(name);
        vm.calls.push(`revert:${name}`);
      },
      deleteSnapshot: async (name) => {
        if (!vm.snapshots.includes(name)) throw new SnapshotNotFoundError(name);
        vm.snapshots = vm.snapshots.filter((n) => n !== name);
      },
    };
  };
}
