/**
 * Every per-VM file on the host, in one place (Lima's `filenames`). A VM's directory is
 * `<stateDir>/vms/<id>/`, mode 0700: its sockets are the keys to the VM.
 */
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** A unix socket path holds at most 107 bytes (sun_path is 108 with the NUL). */
export const UNIX_PATH_MAX = 107;

export interface VmFiles {
  dir: string;
  /** qcow2 overlay on the base image. */
  disk: string;
  /** NoCloud seed: user-data, meta-data, network-config. */
  cidata: string;
  /** Written by qemu -pidfile. */
  pidFile: string;
  /** qemu -D: qemu's own diagnostics. */
  qemuLog: string;
  /** Everything the serial console printed (chardev logfile=). */
  serialLog: string;
  /** stdout/stderr of the qemu launch (before it daemonizes). */
  launchLog: string;
  /** QMP control socket. */
  qmpSocket: string;
  /** Serial console socket; qemu serves one client at a time. */
  serialSocket: string;
  /** Human monitor (HMP) socket, only when started with the monitor on. */
  monitorSocket: string;
  /** The guest agent's channel (answers where the image runs qemu-guest-agent). */
  guestAgentSocket: string;
  /** The VGA screen over VNC (no auth: the 0700 directory is the lock); many clients share it. */
  vncSocket: string;
  /**
   * UEFI variable store (the NVRAM), copied from OVMF's template on the first UEFI start.
   * qcow2, not raw: savevm (suspend, live snapshots) refuses a writable drive that cannot
   * hold snapshots, and this one is writable.
   */
  uefiVars: string;
  /**
   * The guest's memory as a file, for a VM that boots with `memoryFile` (StartOptions): qemu
   * maps it shared, so a suspend leaves the memory here and saves only the device state. A
   * resume maps it privately (QemuConfig.memoryFile), so the suspend after that saves the
   * memory too; the file stays as the start of that memory. Present while such a VM runs or
   * is suspended; a fresh boot and a stop remove it.
   */
  memory: string;
  /** The VM's own SSH key pair (0600). */
  sshKey: string;
  sshPublicKey: string;
  /** Directory holding the sockets: `dir`, or a short runtime directory for deep paths. */
  socketDir: string;
}

/**
 * What a VM at rest is, as a move to another host carries it: its disk (with its snapshots,
 * and a Suspended VM's saved devices), UEFI variables, SSH key pair and console log. The rest
 * is runtime, or written again at its next start (the cidata seed), except for a Suspended
 * VM: a resume keeps the seed the guest booted with, and its memory file is its saved memory.
 */
export function movedFiles(files: VmFiles, { suspended }: { suspended: boolean }): string[] {
  return [files.disk, files.uefiVars, files.sshKey, files.sshPublicKey, files.serialLog, ...(suspended ? [files.cidata, files.memory] : [])];
}

/** Removes a VM's files: its directory, and its sockets' where a deep state dir put them apart. */
export async function removeVmFiles(files: VmFiles): Promise<void> {
  await rm(files.dir, { recursive: true, force: true });
  if (files.socketDir !== files.dir) await rm(files.socketDir, { recursive: true, force: true });
}

export function vmDir(stateDir: string, id: string): string {
  return path.join(stateDir, "vms", id);
}

/**
 * The files of VM `id`. Sockets move to a short runtime directory when the longest one
 * would not fit in UNIX_PATH_MAX bytes (a deep checkout), decided here and nowhere else.
 */
export function vmFiles(stateDir: string, id: string): VmFiles {
  const dir = vmDir(path.resolve(stateDir), id);
  const longest = path.join(dir, "monitor.sock");
  const socketDir = Buffer.byteLength(longest) <= UNIX_PATH_MAX ? dir : path.join(runtimeDir(), createHash("sha256").update(dir).digest("hex").slice(0, 16));
  return {
    dir,
    disk: path.join(dir, "disk.qcow2"),
    cidata: path.join(dir, "cidata.iso"),
    pidFile: path.join(dir, "qemu.pid"),
    qemuLog: path.join(dir, "qemu.log"),
    serialLog: path.join(dir, "serial.log"),
    launchLog: path.join(dir, "launch.log"),
    qmpSocket: path.join(socketDir, "qmp.sock"),
    serialSocket: path.join(socketDir, "serial.sock"),
    monitorSocket: path.join(socketDir, "monitor.sock"),
    guestAgentSocket: path.join(socketDir, "qga.sock"),
    vncSocket: path.join(socketDir, "vnc.sock"),
    uefiVars: path.join(dir, "uefi-vars.qcow2"),
    memory: path.join(dir, "memory.ram"),
    sshKey: path.join(dir, "id_ed25519"),
    sshPublicKey: path.join(dir, "id_ed25519.pub"),
    socketDir,
  };
}

function runtimeDir(): string {
  const base = process.env.XDG_RUNTIME_DIR ?? os.tmpdir();
  return path.join(base, `hangar-${process.getuid?.() ?? 0}`);
}
