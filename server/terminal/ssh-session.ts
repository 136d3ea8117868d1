/**
 * An SSH login shell in a VM for one WebSocket: the ssh2 library with the VM's own key to
 * its forwarded SSH port, a PTY that follows resize, the exit code reported. It ends when
 * either side closes; nothing is left behind.
 */
import { Client, type ClientChannel } from "ssh2";

export interface ShellEndpoint {
  sshPort: number;
  privateKey: string;
  cols: number;
  rows: number;
}

export interface ShellCallbacks {
  onData(bytes: Buffer): void;
  onExit(code: number): void;
  onError(message: string): void;
}

export interface ShellSession {
  write(bytes: Buffer): void;
  resize(cols: number, rows: number): void;
  close(): void;
}

/** Open SSH connections, so tests can assert none is left. */
let open = 0;
export const openSshSessions = () => open;

export function openShell(endpoint: ShellEndpoint, callbacks: ShellCallbacks): ShellSession {
  const client = new Client();
  let channel: ClientChannel | undefined;
  let ended = false;
  // Keystrokes and a resize that arrive while SSH is still connecting wait here.
  const pending: Buffer[] = [];
  let size = { cols: endpoint.cols, rows: endpoint.rows };
  open++;
  const end = () => {
    if (ended) return;
    ended = true;
    open--;
    client.end();
  };

  client.on("ready", () => {
    client.shell({ term: "xterm-256color", cols: size.cols, rows: size.rows }, (error, stream) => {
      if (error) {
        callbacks.onError(`The VM refused a shell: ${error.message}`);
        return end();
      }
      channel = stream;
      for (const bytes of pending.splice(0)) stream.write(bytes);
      stream.on("data", (bytes: Buffer) => callbacks.onData(bytes));
      stream.stderr.on("data", (bytes: Buffer) => callbacks.onData(bytes));
      stream.on("exit", (code: number | null) => callbacks.onExit(code ?? 0));
      stream.on("close", end);
    });
  });
  client.on("error", (error: Error & { code?: string; level?: string }) => {
    const booting = error.code === "ECONNREFUSED" || error.code === "ECONNRESET" || error.level === "client-timeout";
    callbacks.onError(booting ? "The VM is still booting: SSH does not answer yet. Try again in a few seconds." : `SSH failed: ${error.message}`);
    end();
  });
  client.on("close", end);
  client.connect({ host: "127.0.0.1", port: endpoint.sshPort, username: "root", privateKey: endpoint.privateKey, readyTimeout: 8000, keepaliveInterval: 15_000 });

  return {
    write: (bytes) => {
      if (channel) channel.write(bytes);
      else if (pending.reduce((sum, b) => sum + b.length, 0) < 64 * 1024) pending.push(bytes);
    },
    resize: (cols, rows) => {
      size = { cols, rows };
      channel?.setWindow(rows, cols, 0, 0);
    },
    close: end,
  };
}
