/**
 * An SSH login shell in a VM for one WebSocket: the ssh2 library with the VM's own key to
 * its forwarded SSH port, a PTY that follows resize, the exit code reported. While the
 * guest's SSH does not answer yet the session says the VM is still booting and waits, for
 * a bounded time. It ends when either side closes; no connection is left behind.
 */
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, type ClientChannel } from "ssh2";

export interface ShellEndpoint {
  /** Where the VM's forwarded SSH port listens (127.0.0.1 unless forwards bind elsewhere). */
  host?: string;
  sshPort: number;
  /** The account to log in as: the image's login user. */
  user: string;
  privateKey: string;
  cols: number;
  rows: number;
  /** True once the guest's SSH server greets (qemu accepts on the port long before that). */
  sshAnswers: () => Promise<boolean>;
  /** How long to wait for a booting guest's SSH before giving up. */
  bootWaitMs?: number;
}

export interface ShellCallbacks {
  onData(bytes: Buffer): void;
  /** SSH does not answer yet; called once, then the session keeps trying until bootWaitMs. */
  onBooting(): void;
  /** The shell runs. */
  onReady(): void;
  onExit(code: number): void;
  onError(message: string): void;
  /** The session is over: after onExit or onError, or when the channel simply closed. */
  onClose(): void;
}

export interface ShellSession {
  write(bytes: Buffer): void;
  resize(cols: number, rows: number): void;
  close(): void;
}

export const BOOTING_MESSAGE = "The VM is still booting: its SSH server does not answer yet.";
const PROBE_INTERVAL_MS = 500;
/** After end(), how long the guest gets to close the connection before it is destroyed. */
const CLOSE_GRACE_MS = 2000;
const MAX_PENDING_BYTES = 64 * 1024;

/** SSH connections whose TCP socket is still open, so tests can assert none is left. */
const connections = new Set<Client>();
export const openSshSessions = () => connections.size;

/** A shell's exit status; a signal counts as 128 + its number, as in a local shell. */
function exitCode(code: number | null, signal: string | undefined): number {
  if (code !== null) return code;
  const signals = os.constants.signals as Record<string, number | undefined>;
  return 128 + ((signal && signals[signal]) || 0);
}

export function openShell(endpoint: ShellEndpoint, callbacks: ShellCallbacks): ShellSession {
  let client: Client | undefined;
  let channel: ClientChannel | undefined;
  let closed = false;
  let reported = false;
  // Keystrokes that arrive while SSH is still connecting wait here.
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let size = { cols: endpoint.cols, rows: endpoint.rows };

  const finish = () => {
    if (reported) return;
    reported = true;
    callbacks.onClose();
  };
  const fail = (message: string) => {
    if (reported) return;
    callbacks.onError(message);
    close();
  };

  function close(): void {
    if (closed) {
      finish();
      return;
    }
    closed = true;
    const held = client;
    if (held && connections.has(held)) {
      held.end();
      setTimeout(() => held.destroy(), CLOSE_GRACE_MS).unref();
    } else {
      finish();
    }
  }

  function connect(): void {
    const ssh = new Client();
    client = ssh;
    connections.add(ssh);
    ssh.on("ready", () => {
      ssh.shell({ term: "xterm-256color", cols: size.cols, rows: size.rows }, (error, stream) => {
        if (error) return fail(`The VM refused a shell: ${error.message}`);
        if (closed) return stream.close();
        channel = stream;
        callbacks.onReady();
        for (const bytes of pending.splice(0)) stream.write(bytes);
        stream.on("data", (bytes: Buffer) => callbacks.onData(bytes));
        stream.stderr.on("data", (bytes: Buffer) => callbacks.onData(bytes));
        stream.on("exit", (code: number | null, signal?: string) => {
          if (!reported) callbacks.onExit(exitCode(code, signal));
        });
        stream.on("close", close);
      });
    });
    ssh.on("error", (error: Error & { level?: string }) => {
      const booting = error.level === "client-timeout" || /before handshake|ECONNREFUSED|ECONNRESET/.test(error.message);
      fail(booting ? `${BOOTING_MESSAGE} Try again in a few seconds.` : `SSH failed: ${error.message}`);
    });
    ssh.on("close", () => {
      connections.delete(ssh);
      closed = true;
      finish();
    });
    ssh.connect({
      host: endpoint.host ?? "127.0.0.1",
      port: endpoint.sshPort,
      username: endpoint.user,
      privateKey: endpoint.privateKey,
      // The guest makes a new host key at every boot, and the port is our own qemu's
      // forward on loopback: there is no earlier key to compare with.
      hostVerifier: () => true,
      readyTimeout: 10_000,
      keepaliveInterval: 15_000,
    });
  }

  void (async () => {
    const deadline = Date.now() + (endpoint.bootWaitMs ?? 60_000);
    let told = false;
    while (!(await endpoint.sshAnswers().catch(() => false))) {
      if (closed) return finish();
      if (!told) callbacks.onBooting();
      told = true;
      if (Date.now() >= deadline)
        return fail(`${BOOTING_MESSAGE} Gave up after ${Math.round((endpoint.bootWaitMs ?? 60_000) / 1000)} s; try again in a moment.`);
      await sleep(PROBE_INTERVAL_MS);
    }
    if (closed) return finish();
    connect();
  })();

  return {
    write: (bytes) => {
      if (channel) channel.write(bytes);
      else if (pendingBytes + bytes.length <= MAX_PENDING_BYTES) {
        pending.push(bytes);
        pendingBytes += bytes.length;
      }
    },
    resize: (cols, rows) => {
      size = { cols, rows };
      channel?.setWindow(rows, cols, 0, 0);
    },
    close,
  };
}
