/**
 * The host-side VM manager of seed 000 (`vm.Manager`), one object per VM. The driver knows
 * nothing of the database or the state machine: the lifecycle decides what to call when.
 */
import type { Writable } from "node:stream";
import type { Socket } from "node:net";

/** Start of a VM whose hypervisor process is already running. Seed: ErrAlreadyRunning. */
export class AlreadyRunningError extends Error {
  constructor(message = "VM is already running") {
    super(message);
    this.name = "AlreadyRunningError";
  }
}

/** Stop (or shell, sync…) of a VM that is not running. Seed: ErrNotRunning. */
export class NotRunningError extends Error {
  constructor(message = "VM is not running") {
    super(message);
    this.name = "NotRunningError";
  }
}

/** A snapshot operation named a snapshot the VM does not have. */
export class SnapshotNotFoundError extends Error {
  constructor(name: string) {
    super(`no snapshot named "${name}"`);
    this.name = "SnapshotNotFoundError";
  }
}

/** A host program or file the VM needs is not installed (qemu, OVMF…); the message says which. */
export class HostToolMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostToolMissingError";
  }
}

/** The guest's firmware: SeaBIOS, or OVMF with a per-VM variable store. */
export type Firmware = "bios" | "uefi";
export const FIRMWARES = ["bios", "uefi"] as const satisfies readonly Firmware[];

/** Host-side artifacts for direct kernel boot. Absent: boot through the firmware. */
export interface DirectBootOptions {
  kernel: string;
  initrd?: string;
  cmdline?: string;
}

/** One host-to-guest TCP forward. hostPort 0 lets the hypervisor pick a free port. */
export interface PortForward {
  hostPort: number;
  guestPort: number;
}

export interface StartOptions {
  /** Rendered cloud-init user-data, delivered on the cidata ISO. */
  userData: string;
  cpus: number;
  memoryMiB: number;
  /** Public key installed for root through meta-data `public-keys`. */
  sshAuthorizedKey: string;
  /** Attach the hypervisor's human monitor (HMP) on its own socket. */
  monitor: boolean;
  boot?: DirectBootOptions;
  /** Default "bios". "uefi" keeps the VM's UEFI variables in its own directory, made on first start. */
  firmware?: Firmware;
  /** Forwards besides SSH (SSH's own is always set up; see sshHostPort). */
  ports: PortForward[];
  /** Host port for the guest's SSH; 0 picks a free one. */
  sshHostPort: number;
  hostname: string;
  /** cloud-init instance-id; a new one makes cloud-init treat the VM as new (clones). */
  instanceId: string;
  /** Restore the state saved by suspend() instead of booting. */
  resume?: boolean;
  /** The machine type to run; a resume MUST use the one the VM was suspended with. */
  machine?: string;
}

/** What a successful start reports: the host ports actually bound. */
export interface StartResult {
  /** The concrete machine type qemu runs (never an alias such as "q35"). */
  machine: string;
  pid: number;
  sshPort: number;
  /** guestPort -> bound host port, for every forward in StartOptions.ports. */
  ports: Map<number, number>;
}

export interface Snapshot {
  name: string;
  /** Bytes of VM state saved with it (0 for a disk-only snapshot). */
  vmStateBytes: number;
  createdAt: Date;
}

export interface SshIdentity {
  privateKeyFile: string;
  /** OpenSSH private key text. */
  privateKey: string;
  publicKey: string;
}

export interface ShellOptions {
  /** Bytes written to the command's standard input. */
  input?: string;
  timeoutMs?: number;
  /** Cap on captured stdout and stderr, each. */
  maxOutputBytes?: number;
}

export interface ShellResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  truncated: boolean;
}

export interface Manager {
  /** The address of the host as seen from the guest. */
  addr(): string;
  /** Where user-facing lifecycle messages and child process output are written. */
  setOutput(output: Writable): void;
  /**
   * Creates the VM's disk from `baseImage` (an overlay; the base is never written) and the
   * VM's own SSH key pair. MUST fail if the VM already exists; on failure nothing is left.
   */
  create(baseImage: string, baseFormat?: string): Promise<void>;
  /** True when the VM's directory and disk exist. */
  exists(): Promise<boolean>;
  /**
   * Starts the VM and returns once the hypervisor runs it (not once the guest booted).
   * MUST throw AlreadyRunningError when it is already running; on any other failure no
   * process is left behind.
   */
  start(options: StartOptions): Promise<StartResult>;
  /** True when the VM's own hypervisor process is alive (not a reused pid). */
  running(): Promise<boolean>;
  /** The hypervisor's pid, or 0 when not running. */
  pid(): Promise<number>;
  /**
   * Runs `command` in the guest over SSH (argv joined for the remote shell, each word
   * quoted). MUST throw NotRunningError when the VM is not running.
   */
  shell(command: string[], sshPort: number, identityFile: string, options?: ShellOptions): Promise<ShellResult>;
  /** Connects to the VM's serial console. MUST throw NotRunningError when not running. */
  console(): Promise<Socket>;
  /** Connects to the VM's human monitor (HMP). MUST throw NotRunningError when not running. */
  monitor(): Promise<Socket>;
  /** rsync `from` (a host path) to `to` in the guest, over SSH. */
  sync(from: string, to: string, chown: string | undefined, excludes: string[], sshPort: number, identityFile: string): Promise<void>;
  /**
   * Stops the VM: an ACPI power-button press, up to `timeoutMs` for the guest to power off,
   * then a forced quit. Returns once no process is left. MUST throw NotRunningError when
   * it was not running.
   */
  stop(timeoutMs: number): Promise<void>;
  /** Removes everything the VM has on the host. MUST NOT be called while it runs. */
  delete(): Promise<void>;

  /**
   * Saves the running VM's whole state into its disk and ends the process; start() with
   * `resume` carries on from there. On failure the VM keeps running. Seed: Suspend.
   */
  suspend(): Promise<void>;
  /** Drops the state a suspend saved (a suspended VM is then simply stopped). */
  discardSuspendedState(): Promise<void>;
  /**
   * Creates this VM's disk as a copy of VM `sourceVmId`'s disk (same base image, its own
   * file) and a new SSH key. The source MUST NOT be running.
   */
  cloneFrom(sourceVmId: string): Promise<void>;
  /** Disk snapshots (not the suspend state): qemu-img when stopped, savevm & co when running. */
  listSnapshots(): Promise<Snapshot[]>;
  createSnapshot(name: string): Promise<void>;
  revertSnapshot(name: string): Promise<void>;
  deleteSnapshot(name: string): Promise<void>;

  // Beyond seed 000: what the lifecycle and the reconciler need to see.

  /** The VM's own SSH key: the private key (its file and text) and the public key line. */
  identity(): Promise<SshIdentity>;
  /** True when the guest's SSH server greets on host port `sshPort` (no login). */
  sshAnswers(sshPort: number): Promise<boolean>;
  /** The forwards qemu has bound now (reads them back from the running VM). */
  forwards(): Promise<PortForward[]>;
  /** Ends the VM's process at once, without asking the guest. No-op when not running. */
  kill(): Promise<void>;
  /** The last `maxBytes` of what the serial console printed. */
  serialTail(maxBytes: number): Promise<string>;
}
