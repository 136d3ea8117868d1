/**
 * The host-side VM manager of seed 000 (`vm.Manager`), one object per VM. The driver knows
 * nothing of the database or the state machine: the lifecycle decides what to call when.
 */
import type { Writable } from "node:stream";
import type { Socket } from "node:net";
import type { Firmware } from "../../lib/vocabulary.ts";

/** Start of a VM whose hypervisor process is already running. Seed: ErrAlreadyRunning. */
export class AlreadyRunningError extends Error {
  constructor(message = "VM is already running") {
    super(message);
    this.name = "AlreadyRunningError";
  }
}

/** Stop (or shell, sync…) of a VM that is not running. Seed: ErrNotRunning. */
export class NotRunningError extends Error {
  constructor(message = "VM is not running", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NotRunningError";
  }
}

/** A command in the guest ran past its time limit and was ended. */
export class CommandTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the command did not finish within ${Math.round(timeoutMs / 1000)} s`);
    this.name = "CommandTimeoutError";
  }
}

/** A snapshot operation named a snapshot the VM does not have. */
export class SnapshotNotFoundError extends Error {
  constructor(name: string) {
    super(`no snapshot named "${name}"`);
    this.name = "SnapshotNotFoundError";
  }
}

/** A disk resize asked for less than the disk has: disks only grow. */
export class DiskShrinkError extends Error {
  constructor(readonly currentBytes: number) {
    super(`the disk is ${currentBytes} bytes and can only grow`);
    this.name = "DiskShrinkError";
  }
}

/** qcow2 cannot resize a disk that has internal snapshots. */
export class DiskHasSnapshotsError extends Error {
  constructor() {
    super("the disk has snapshots");
    this.name = "DiskHasSnapshotsError";
  }
}
/**
 * A forward's fixed host port is held by another program (or VM) on this host, so the
 * hypervisor cannot listen on it. Its message is the sentence callers see (no command line).
 */
export class HostPortTakenError extends Error {
  constructor(
    readonly hostPort: number,
    readonly guestPort?: number,
  ) {
    const change =
      guestPort === undefined ? "pick another or 0 for any free port" : `free it, or forward guest port ${guestPort} on another host port (0 for any free one)`;
    super(`Host port ${hostPort} is taken on this host; ${change}.`);
    this.name = "HostPortTakenError";
  }
}

/**
 * The hypervisor itself refused the state a suspend saved (it reported the load failing), so
 * resuming it again would fail again. A resume cut short any other way (qemu killed, the
 * server restarting) keeps the saved state for the next start.
 */
export class SavedStateLoadError extends Error {
  constructor(detail: string) {
    super(`The saved state did not load: ${detail}`);
    this.name = "SavedStateLoadError";
  }
}

/**
 * The account Hangar logs in as unless an image names another: the cidata creates it (with
 * the VM's key and passwordless sudo), because cloud images refuse root logins.
 */
export const HANGAR_LOGIN_USER = "hangar";
/** A host program or file the VM needs is not installed (qemu, OVMF…); the message says which. */
export class HostToolMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostToolMissingError";
  }
}

export { FIRMWARES, type Firmware } from "../../lib/vocabulary.ts";

/** Host-side artifacts for direct kernel boot. Absent: boot through the firmware. */
export interface DirectBootOptions {
  kernel: string;
  initrd?: string;
  cmdline?: string;
}

/**
 * How the guest reaches the network. The host reaches the guest's SSH and forwards through
 * the hypervisor's user network in every mode.
 * - nat: outbound through the user network, with a default route and DNS.
 * - isolated: no route out; only the forwards in.
 * - bridge: an isolated user network for SSH and forwards, plus a NIC on an existing host
 *   bridge (the guest gets an address on that network).
 */
export type NetworkConfig = { mode: "nat" } | { mode: "isolated" } | { mode: "bridge"; bridge: string };

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
  /**
   * The VM's public key: for Hangar's own account (HANGAR_LOGIN_USER, created by the
   * cidata with passwordless sudo) and, through meta-data `public-keys`, for the image's
   * default user (cloud-init) or root (images that read only meta-data, hangar-tiny).
   */
  sshAuthorizedKey: string;
  /** The owner's own public keys, installed beside sshAuthorizedKey (same accounts). */
  userAuthorizedKeys?: string[];
  /** Attach the hypervisor's human monitor (HMP) on its own socket. */
  monitor: boolean;
  boot?: DirectBootOptions;
  /** Default "bios". "uefi" keeps the VM's UEFI variables in its own directory, made on first start. */
  firmware?: Firmware;
  /** Forwards besides SSH (SSH's own is always set up; see sshHostPort). */
  ports: StartForward[];
  /** Host port for the guest's SSH; 0 picks a free one. */
  sshHostPort: number;
  /** With sshHostPort 0: the port SSH had before, taken again while it is free. */
  sshPreferredPort?: number;
  /** How the guest reaches the network (nat, isolated, or a host bridge). */
  network: NetworkConfig;
  hostname: string;
  /** cloud-init instance-id; a new one makes cloud-init treat the VM as new (clones). */
  instanceId: string;
  /** Restore the state saved by suspend() instead of booting. */
  resume?: boolean;
  /** The machine type to run; a resume MUST use the one the VM was suspended with. */
  machine?: string;
  /** Host path of an ISO image to put in the CD-ROM drive (an installer). */
  cdrom?: string;
  /**
   * A fresh boot with the guest's memory in a file the VM keeps, rather than anonymous
   * memory: suspend() then saves only the devices (about 1 MB) and a resume maps the memory
   * back from the page cache, several times faster. The kernel writes a running guest's
   * memory back to that file, so only VMs that wait suspended (a pool's) ask for it. A
   * resume finds out by itself how the VM was suspended.
   */
  memoryFile?: boolean;
}

/** A forward to set up at start: hostPort 0 takes `preferred` while it is free, else any port. */
export interface StartForward extends PortForward {
  preferred?: number;
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

/** How a stop ended: the guest powered off, or it did not in time and qemu was ended. */
export interface StopOutcome {
  how: "powered-off" | "quit" | "killed";
  afterMs: number;
}

/** Disk I/O since the hypervisor started, summed over the VM's drives. */
export interface BlockStats {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** The guest's memory as its own kernel counts it (a balloon driver's report). */
export interface GuestMemory {
  totalBytes: number;
  /** What the guest could give its programs without swapping (its MemAvailable). */
  availableBytes: number;
}

/** One of the guest's network interfaces with its addresses, as its guest agent reports them. */
export interface GuestInterface {
  name: string;
  /** Its MAC address, where reported. */
  mac: string | null;
  addresses: { family: "ipv4" | "ipv6"; address: string; prefix: number }[];
}

export interface DiskInfo {
  virtualBytes: number;
  actualBytes: number;
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

/** Who a command or a sync runs as in the guest. */
export interface LoginOptions {
  /** The account to log in as over SSH; default HANGAR_LOGIN_USER. */
  user?: string;
  /** Run as root: through `sudo -n` unless the login user is root already. */
  asRoot?: boolean;
}

export interface ShellOptions extends LoginOptions {
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
  /** The address of the host as seen from the guest (reachable in nat mode only). */
  addr(): string;
  /** Where the host reaches the guest's forwarded ports (its SSH among them). */
  sshHost(): string;
  /** Where user-facing lifecycle messages and child process output are written. */
  setOutput(output: Writable): void;
  /**
   * Creates the VM's disk from `baseImage` (an overlay; the base is never written) and the
   * VM's own SSH key pair, `sizeBytes` large (never smaller than the base). MUST fail if the
   * VM already exists; on failure nothing is left.
   */
  create(baseImage: string, baseFormat?: string, sizeBytes?: number): Promise<void>;
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
   * Runs `command` in the guest over SSH as `options.user` (argv joined for the remote
   * shell, each word quoted). MUST throw NotRunningError when the VM is not running and
   * CommandTimeoutError when the command runs past `options.timeoutMs`.
   */
  shell(command: string[], sshPort: number, identityFile: string, options?: ShellOptions): Promise<ShellResult>;
  /** Connects to the VM's serial console. MUST throw NotRunningError when not running. */
  console(): Promise<Socket>;
  /** Connects to the VM's human monitor (HMP). MUST throw NotRunningError when not running. */
  monitor(): Promise<Socket>;
  /**
   * Connects to the VM's screen: an RFB (VNC) server, one connection per viewer, no auth.
   * MUST throw NotRunningError when not running.
   */
  display(): Promise<Socket>;
  /**
   * rsync `from` (a host path) to `to` in the guest, over SSH as `options.user`: files are
   * written as that user. With `asRoot` or `chown` (which only root may do) the guest's
   * rsync runs through `sudo -n`.
   */
  sync(from: string, to: string, chown: string | undefined, excludes: string[], sshPort: number, identityFile: string, options?: LoginOptions): Promise<void>;
  /**
   * Stops the VM: an ACPI power-button press, up to `timeoutMs` for the guest to power off,
   * then a forced quit. Returns once no process is left. MUST throw NotRunningError when
   * it was not running.
   */
  stop(timeoutMs: number): Promise<StopOutcome>;
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
   * Stops the guest's CPUs (QMP stop): its memory stays, it uses no CPU time, and unpause()
   * carries on in about a millisecond. The process runs on, so the VM stays Running.
   * A paused VM is paused already. MUST throw NotRunningError when it is not running.
   */
  pause(): Promise<void>;
  /** Carries on a paused guest (QMP cont); a running one just runs on. MUST throw NotRunningError when not running. */
  unpause(): Promise<void>;
  /** When the state a suspend saved was written into the disk; undefined when there is none. */
  suspendedStateSavedAt(): Promise<Date | undefined>;
  /**
   * Completes a resume that was cut short while this VM's process runs (a server crash in
   * start() with `resume`): loads the saved state if it is not loaded yet, carries the guest
   * on, and drops the saved state from the disk. For a boot's process, it only carries a
   * paused guest on. MUST throw NotRunningError when not running;
   * SavedStateLoadError when the hypervisor refuses the state.
   */
  finishResume(): Promise<void>;
  /**
   * Settles a suspend that was interrupted (a server crash) while this VM's process still
   * runs: waits for a save still under way, then, when a complete saved state written at or
   * after `since` is in the disk, ends the process ("suspended"); otherwise the guest runs on
   * ("resumed"). MUST throw NotRunningError when not running.
   */
  settleSuspend(since: Date): Promise<"suspended" | "resumed">;
  /**
   * Creates this VM's disk as a copy of VM `sourceVmId`'s disk (same base image, its own
   * file) and a new SSH key, without the source's snapshots or saved state. The source
   * MUST NOT be running.
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
  /**
   * Adds a forward to the running VM and returns the host port bound (hostPort 0: a free
   * one). MUST throw NotRunningError when not running, and fail when the port is taken.
   */
  addForward(forward: PortForward): Promise<number>;
  /** Removes the running VM's forward listening on host port `hostPort`. */
  removeForward(hostPort: number): Promise<void>;
  /** The disk's size as the guest sees it and the bytes it takes on the host. */
  diskInfo(): Promise<DiskInfo>;
  /**
   * Grows the VM's disk to `sizeBytes`, stopped or running (the guest sees the new size at
   * once; its partitions are its own). MUST refuse to shrink it, or to resize a disk with snapshots.
   */
  resizeDisk(sizeBytes: number): Promise<void>;
  /**
   * Writes the disk of a VM that is not running to `target` as one qcow2 file of its own:
   * no backing file, no snapshots (an image made from the VM). MUST throw
   * AlreadyRunningError when it runs.
   */
  exportDisk(target: string): Promise<void>;
  /**
   * Sets the guest's clock to the host's through its guest agent (after a resume, the
   * guest's clock is behind by the time it was suspended). False when no agent answered.
   */
  syncGuestClock(): Promise<boolean>;
  /** Ends the VM's process at once, without asking the guest. No-op when not running. */
  kill(): Promise<void>;
  /** The last `maxBytes` of what the serial console printed. */
  serialTail(maxBytes: number): Promise<string>;
  /** Disk I/O counters of the running VM (metrics). MUST throw NotRunningError when not running. */
  blockStats(): Promise<BlockStats>;
  /**
   * The guest's own memory figures, or null while it reports none (no balloon driver in the
   * guest, or not yet). MUST throw NotRunningError when not running.
   */
  guestMemory(): Promise<GuestMemory | null>;
  /**
   * The guest's interfaces and addresses from its guest agent (qemu-guest-agent's
   * guest-network-get-interfaces), or null when no agent answers or it does not report them.
   * MUST throw NotRunningError when not running.
   */
  guestInterfaces(): Promise<GuestInterface[] | null>;
}
