/**
 * The qemu command line, built from a config by a pure function (Lima's Cmdline, libvirt's
 * qemuxml2argv): no I/O here, golden tests in args.test.ts. `-daemonize` changes directory
 * to `/`, so every path must be absolute.
 */
import { createHash } from "node:crypto";
import type { DirectBootOptions, Firmware, NetworkConfig, PortForward } from "../manager.ts";
import type { VmFiles } from "./paths.ts";

export type Accel = "kvm" | "tcg";

/** The id of the memory backend of a VM whose memory is a file. */
const MEMORY_BACKEND = "ram0";
/** The most memory TCG's translated-code cache takes in one qemu (MiB). */
const TCG_CACHE_MIB = 512;

/** The netdev id of the user network that carries SSH and the forwards (hostfwd_add names it). */
export const USER_NETDEV = "net0";

export interface QemuConfig {
  id: string;
  files: VmFiles;
  accel: Accel;
  /** Pinned machine type: saved VM state only loads into the same one. */
  machine: string;
  cpus: number;
  memoryMiB: number;
  diskFormat: "qcow2";
  boot?: DirectBootOptions;
  firmware: Firmware;
  /** OVMF's code, read-only and shared by every VM; required for "uefi". */
  uefiCode?: string;
  sshHostPort: number;
  ports: PortForward[];
  /** The host address forwards listen on. */
  forwardAddress: string;
  network: NetworkConfig;
  monitor: boolean;
  /** Resume from this internal snapshot of the disk (a suspended VM's saved state). */
  loadvm?: string;
  /**
   * The guest's memory in this file (memory-backend-file) instead of anonymous memory.
   * "shared": what the guest writes goes to the file and stays there when qemu ends (a boot
   * whose suspend will leave the memory there). "private": the file is read as the memory
   * starts and the guest's writes are copied aside, never written back (a resume from it:
   * pages load as the guest touches them, and the running guest's writes cost no disk I/O).
   */
  memoryFile?: { path: string; mapping: "shared" | "private" };
  /** Start with the CPUs stopped (-S): the caller loads a saved state over QMP, then continues. */
  paused?: boolean;
  /**
   * The unprivileged user qemu switches to once it has opened its files and before the guest
   * runs; set when Hangar runs as root, so qemu never does.
   */
  runAs?: string;
  /** An ISO image in the CD-ROM drive (read-only), e.g. an installer. */
  cdrom?: string;
}

export class QemuConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QemuConfigError";
  }
}

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A POSIX user name as useradd accepts it. */
export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Snapshot tags: letters, digits, dot, dash, underscore; not starting with a dash. */
export const SNAPSHOT_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/;

/** A path that goes inside a qemu option value: absolute, one line, commas doubled. */
function pathValue(what: string, value: string): string {
  return optionValue(what, absolutePath(what, value));
}

/** A path passed as a whole argv element (-kernel, -pidfile): absolute and one line. */
function absolutePath(what: string, value: string): string {
  if (!value.startsWith("/")) throw new QemuConfigError(`${what} must be an absolute path, got "${value}"`);
  if (/[\n\r\0]/.test(value)) throw new QemuConfigError(`${what} must not contain line breaks or NUL`);
  return value;
}

/** qemu's option parser splits on commas; a literal comma is written twice. */
function optionValue(what: string, value: string): string {
  if (/[\n\r\0]/.test(value)) throw new QemuConfigError(`${what} must not contain line breaks or NUL`);
  return value.replaceAll(",", ",,");
}

function port(what: string, value: number, allowZero: boolean): number {
  const min = allowZero ? 0 : 1;
  if (!Number.isInteger(value) || value < min || value > 65535) {
    throw new QemuConfigError(`${what} must be an integer from ${min} to 65535, got ${value}`);
  }
  return value;
}

/** An IPv4 address (forwards listen on it; IPv6 hostfwd is not supported by user networking). */
export function forwardAddress(value: string): string {
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(value) || value.split(".").some((octet) => Number(octet) > 255)) {
    throw new QemuConfigError(`forward address "${value}" is not an IPv4 address`);
  }
  return value;
}

/**
 * The bridged NIC's MAC, the VM's own and the same at every start (from its id, in qemu's
 * 52:54:00 prefix). Without it qemu numbers NICs per process, so every VM's second NIC was
 * 52:54:00:12:34:57 and two VMs on one bridge clashed.
 */
export function bridgeMac(id: string): string {
  const bytes = [...createHash("sha256").update(id).digest().subarray(0, 3)];
  return ["52", "54", "00", ...bytes.map((byte) => byte.toString(16).padStart(2, "0"))].join(":");
}

/** A Linux interface name: up to 15 characters, no separators qemu or the helper would misread. */
export function bridgeName(value: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value) || value.startsWith("-")) throw new QemuConfigError(`bridge "${value}" is not an interface name`);
  return value;
}

/** The argv for qemu-system-x86_64 (without the program itself). */
export function buildQemuArgs(config: QemuConfig): string[] {
  const { files } = config;
  if (!ID_PATTERN.test(config.id)) throw new QemuConfigError(`VM id "${config.id}" is not a lowercase DNS label`);
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(config.machine)) throw new QemuConfigError(`machine type "${config.machine}" is not valid`);
  if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > 64) throw new QemuConfigError("cpus must be from 1 to 64");
  if (!Number.isInteger(config.memoryMiB) || config.memoryMiB < 64) throw new QemuConfigError("memory must be at least 64 MiB");

  const address = forwardAddress(config.forwardAddress);
  const forwards = [
    `hostfwd=tcp:${address}:${port("SSH host port", config.sshHostPort, true)}-:22`,
    ...config.ports.map((p) => `hostfwd=tcp:${address}:${port("host port", p.hostPort, true)}-:${port("guest port", p.guestPort, false)}`),
  ];
  const restricted = config.network.mode !== "nat";

  const args: string[] = [
    "-name",
    `hangar-${config.id}`,
    "-machine",
    `${config.machine}${config.memoryFile !== undefined ? `,memory-backend=${MEMORY_BACKEND}` : ""}`,
    // TCG keeps the guest code it has translated in a cache qemu sizes at 1 GiB, taken as
    // the guest runs more code: 512 MiB bounds it, as Lima does.
    "-accel",
    config.accel === "kvm" ? "kvm" : `tcg,tb-size=${TCG_CACHE_MIB}`,
    "-cpu",
    config.accel === "kvm" ? "host" : "max",
    "-smp",
    String(config.cpus),
    "-m",
    `${config.memoryMiB}M`,
    ...(config.memoryFile !== undefined
      ? [
          "-object",
          `memory-backend-file,id=${MEMORY_BACKEND},size=${config.memoryMiB}M,mem-path=${pathValue("memory file", config.memoryFile.path)},share=${config.memoryFile.mapping === "shared" ? "on" : "off"}`,
        ]
      : []),
    ...(config.paused ? ["-S"] : []),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-daemonize",
    "-pidfile",
    absolutePath("pid file", files.pidFile),
    "-D",
    absolutePath("qemu log", files.qemuLog),
    "-qmp",
    `unix:${pathValue("QMP socket", files.qmpSocket)},server=on,wait=off`,
    "-chardev",
    `socket,id=serial0,path=${pathValue("serial socket", files.serialSocket)},server=on,wait=off,logfile=${pathValue("serial log", files.serialLog)},logappend=on`,
    "-serial",
    "chardev:serial0",
    "-drive",
    `file=${pathValue("disk", files.disk)},format=${config.diskFormat},if=virtio,discard=unmap`,
    "-drive",
    `file=${pathValue("cidata", files.cidata)},format=raw,if=virtio,readonly=on`,
    ...firmwareDrives(config),
    "-netdev",
    ["user", `id=${USER_NETDEV}`, ...(restricted ? ["restrict=on"] : []), ...forwards].join(","),
    "-device",
    `virtio-net-pci,netdev=${USER_NETDEV}`,
    "-device",
    "virtio-rng-pci",
    // The guest agent's channel: a guest that runs qemu-guest-agent answers on it.
    "-device",
    "virtio-serial-pci,id=vser0",
    "-chardev",
    `socket,id=qga0,path=${pathValue("guest agent socket", files.guestAgentSocket)},server=on,wait=off`,
    "-device",
    "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
  ];
  if (config.network.mode === "bridge") {
    args.push("-netdev", `bridge,id=lan0,br=${bridgeName(config.network.bridge)}`, "-device", `virtio-net-pci,netdev=lan0,mac=${bridgeMac(config.id)}`);
  }
  if (config.monitor) {
    args.push("-monitor", `unix:${pathValue("monitor socket", files.monitorSocket)},server=on,wait=off`);
  }
  if (config.runAs !== undefined) {
    if (!USER_NAME.test(config.runAs)) throw new QemuConfigError(`"${config.runAs}" is not a user name`);
    args.push("-runas", config.runAs);
  }
  // The graphical console: a VGA card whose screen qemu serves over VNC on a unix socket
  // (never TCP), every client sharing it. The card sits at a fixed slot, after the others,
  // so their PCI addresses stay put: a VM suspended before it had a display still resumes.
  args.push("-vnc", `unix:${pathValue("VNC socket", files.vncSocket)},share=force-shared`, "-device", "VGA,addr=0x1e");
  // A balloon that is never inflated: the guest's driver reports its own memory figures
  // (free, available, caches) for the VM's graphs, and the pages it leaves free, which
  // qemu gives back to the host (free page reporting, as Proxmox turns on): a guest's
  // boot no longer keeps all its memory resident. A fixed slot too, for the same reason.
  args.push("-device", "virtio-balloon-pci,id=balloon0,addr=0x1d,free-page-reporting=on");
  // q35's built-in AHCI controller carries the CD-ROM: no new PCI device. Firmware boots the
  // disk first and falls through to the CD while the disk has no boot sector (an installer).
  if (config.cdrom !== undefined) {
    args.push(
      "-drive",
      `if=none,id=cdrom0,media=cdrom,readonly=on,format=raw,file=${pathValue("CD-ROM image", config.cdrom)}`,
      "-device",
      "ide-cd,bus=ide.1,drive=cdrom0",
    );
  }
  if (config.loadvm !== undefined) {
    if (!SNAPSHOT_TAG.test(config.loadvm)) throw new QemuConfigError(`snapshot tag "${config.loadvm}" is not valid`);
    args.push("-loadvm", config.loadvm);
  }
  if (config.boot) {
    args.push("-kernel", absolutePath("kernel", config.boot.kernel));
    if (config.boot.initrd) args.push("-initrd", absolutePath("initrd", config.boot.initrd));
    if (config.boot.cmdline) {
      if (/[\n\r\0]/.test(config.boot.cmdline)) throw new QemuConfigError("kernel command line must be one line");
      args.push("-append", config.boot.cmdline);
    }
  }
  return args;
}

/** The disk's drive as qemu names it: if=virtio drives are virtio0, virtio1… in argv order, the disk first. */
export const DISK_DRIVE = "virtio0";

/**
 * UEFI: OVMF's code and the VM's variable store as the two flash chips. They come after the
 * disk on purpose: savevm writes the VM state into the first writable drive that can hold
 * snapshots, and that must be the disk (suspend and snapshots read it from there).
 */
function firmwareDrives(config: QemuConfig): string[] {
  if (config.firmware === "bios") return [];
  if (!config.uefiCode) throw new QemuConfigError("UEFI boot needs the firmware code file");
  return [
    "-drive",
    `if=pflash,unit=0,format=raw,readonly=on,file=${pathValue("UEFI firmware", config.uefiCode)}`,
    "-drive",
    `if=pflash,unit=1,format=qcow2,file=${pathValue("UEFI variables", config.files.uefiVars)}`,
  ];
}

/** The argv as golden files show it: the program, then one option (and its value) a line. */
export function formatArgs(program: string, args: string[]): string {
  const lines = [program];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const next = args[i + 1];
    if (arg.startsWith("-") && next !== undefined && !next.startsWith("-")) {
      lines.push(`${arg} ${next}`);
      i++;
    } else {
      lines.push(arg);
    }
  }
  return `${lines.join("\n")}\n`;
}
