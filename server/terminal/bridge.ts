/**
 * The WebSocket terminal bridge at /ws/terminal. An upgrade is refused with 403, before
 * anything is attached, unless its Origin is one of Hangar's public or allowed origins
 * (never compared with the request's Host, which the client chooses) and it carries a
 * valid ticket. A client that sends no Origin at all is no browser (browsers always send
 * one on WebSocket upgrades): it is let through only with a ticket issued to an API token.
 * Then the socket is joined to the VM's serial console hub, an SSH shell, the qemu monitor,
 * its display, or a raw tunnel to its SSH port; for a VM on another host, it is piped to that
 * host (proxy.ts), which takes it on the internal endpoint only with a pass signed with the
 * cluster key. Heartbeats find dead peers; a terminal ends with the session or token it was
 * opened with, when its user is disabled, removed or loses the right it was opened with, and
 * after a long time without input.
 */
import type { IncomingMessage } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Recorder } from "../audit/recorder.ts";
import { onAccessChange } from "../auth/access.ts";
import { CLUSTER_HEADER, verifyPass } from "../auth/cluster-secret.ts";
import { canControl, isRole } from "../../lib/vocabulary.ts";
import type { Db } from "../db.ts";
import { HANGAR_LOGIN_USER, type Manager } from "../driver/manager.ts";
import { userMessage } from "../errors.ts";
import { originAllowed } from "../origins.ts";
import type { ConsoleHub, Viewer } from "./console-hub.ts";
import { pipeDisplay } from "./display-pipe.ts";
import { decodeControl, encodeControl, type ControlMessage } from "./protocol.ts";
import { BOOTING_MESSAGE, openShell } from "./ssh-session.ts";
import { INTERNAL_TERMINAL_PATH, TERMINAL_PASS, proxyTerminal, toBuffer, type Owner } from "./proxy.ts";
import { isTerminalKind, ticketGrant, type TerminalKind, type TicketGrant, type TicketStore } from "./tickets.ts";

export const TERMINAL_PATH = "/ws/terminal";

/** Cursor position reports (ESC [ row ; col R), which a terminal sends only when asked. */
const CURSOR_REPORT = /\x1b\[\d+;\d+R/g;

/** `bytes` without the cursor position reports in it. */
export function withoutCursorReports(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  return CURSOR_REPORT.test(text) ? Buffer.from(text.replace(CURSOR_REPORT, ""), "latin1") : bytes;
}
/** Larger frames are refused: keystrokes and pastes are small. */
export const MAX_FRAME_BYTES = 64 * 1024;

export interface BridgeOptions {
  hangar: { db: Db; driverFor: (vmId: string) => Manager; hosts: { selfId: () => Promise<string> }; clusterKey: Buffer; recorder: Recorder };
  hub: ConsoleHub;
  tickets: TicketStore;
  /** Every origin allowed to open terminals: Hangar's public origins and HANGAR_ALLOWED_ORIGINS. */
  allowedOrigins: string[];
  heartbeatMs?: number;
  idleMs?: number;
  /** How long a shell waits for a booting VM's SSH before it gives up. */
  shellBootWaitMs?: number;
}

interface Terminal {
  ws: WebSocket;
  grant: TicketGrant;
  alive: boolean;
  lastInput: number;
  close: (message?: string) => void;
}

/** The URL path that opens a `kind` terminal on VM `vmId` with `ticket`. */
export function terminalPath(ticket: string, vmId: string, kind: TerminalKind): string {
  const query = new URLSearchParams({ ticket, vm: vmId, kind });
  return `${TERMINAL_PATH}?${query.toString()}`;
}

export function createTerminalBridge({
  hangar,
  hub,
  tickets,
  allowedOrigins,
  heartbeatMs = 15_000,
  idleMs = 30 * 60_000,
  shellBootWaitMs = 60_000,
}: BridgeOptions) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const terminals = new Set<Terminal>();
  /** VMs whose qemu monitor a terminal holds. */
  const monitors = new Set<string>();
  /** Nonces of the internal passes taken, until they expire: each is good for one terminal. */
  const usedPasses = new Map<string, number>();

  function refuse(socket: Duplex, reason: string, status = "403 Forbidden"): void {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
  }

  function send(ws: WebSocket, message: ControlMessage): void {
    if (ws.readyState === ws.OPEN) ws.send(encodeControl(message));
  }

  /**
   * Checks, in this order and before anything is attached: the Origin (so a cross-site
   * page cannot even burn a ticket), then the ticket, which must name the VM and kind the
   * URL asks for, then that its grant still holds (session, token, role). Without an Origin
   * the ticket must have been issued to an API token. Any failure is a plain 403.
   */
  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server stops watching an upgraded socket's errors: a peer that resets
    // during the handshake (or while refused) would otherwise be an uncaught exception.
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === INTERNAL_TERMINAL_PATH) return handleInternal(req, socket, head);
    if (url.pathname !== TERMINAL_PATH) return refuse(socket, "No such WebSocket endpoint.", "404 Not Found");
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, allowedOrigins)) return refuse(socket, "Origin not allowed.");
    const vmId = url.searchParams.get("vm") ?? "";
    const kind = url.searchParams.get("kind") ?? "";
    if (!isTerminalKind(kind)) return refuse(socket, "The URL names no terminal kind (console, shell, monitor, display or tunnel).");
    void tickets
      .redeem(url.searchParams.get("ticket") ?? "", { vmId, kind, viaToken: origin === undefined || undefined })
      .then(async (grant) => {
        if (!grant)
          return refuse(socket, origin === undefined ? "Origin not allowed." : "No valid ticket for this VM and terminal: ask terminal.ticket for a new one.");
        // A ticket lives 30 s: a sign-out, revocation or demotion since it was issued refuses it
        // now, rather than at the next sweep with the terminal already open.
        const gone = await revoked(grant);
        if (gone) return refuse(socket, gone);
        const owner = await ownerElsewhere(grant.vmId);
        wss.handleUpgrade(req, socket, head, (ws) => {
          // A malformed frame (unmasked, bad opcode, too long, bad UTF-8) is a client's fault:
          // ws has already closed with the matching code (1002, 1007, 1009), and nothing is logged
          // so a client cannot flood the log. Without this listener it would crash the process.
          ws.on("error", () => undefined);
          const opened = owner ? proxy(ws, grant, owner) : attach(ws, grant);
          opened.catch((error: unknown) => {
            send(ws, { type: "error", message: `The terminal could not be opened: ${userMessage(error)}` });
            ws.close(1011);
          });
        });
      })
      .catch(() => refuse(socket, "The terminal could not be opened; try again.", "503 Service Unavailable"));
  }

  /** The host a VM runs on when that is not this one. */
  async function ownerElsewhere(vmId: string): Promise<Owner | undefined> {
    const vm = await hangar.db.vm.findUnique({ where: { id: vmId }, select: { hostId: true, host: { select: { name: true, apiAddress: true } } } });
    if (!vm?.host || vm.hostId === (await hangar.hosts.selfId())) return undefined;
    return vm.host;
  }

  /**
   * A terminal a peer host proxies (proxy.ts): refused with 403, before anything is attached,
   * without a pass signed with the cluster key, unexpired, not used before.
   */
  function handleInternal(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const pass = verifyPass(hangar.clusterKey, req.headers[CLUSTER_HEADER], TERMINAL_PASS);
    const grant = ticketGrant.safeParse(pass?.data);
    if (!pass || !grant.success || usedPasses.has(pass.nonce)) return refuse(socket, "This endpoint is for Hangar hosts only.");
    const now = Date.now();
    for (const [nonce, expiresAt] of usedPasses) if (expiresAt <= now) usedPasses.delete(nonce);
    usedPasses.set(pass.nonce, pass.expiresAt);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => undefined);
      attach(ws, grant.data).catch((error: unknown) => {
        send(ws, { type: "error", message: `The terminal could not be opened: ${userMessage(error)}` });
        ws.close(1011);
      });
    });
  }

  /** A terminal as the heartbeat, idle and sign-out sweeps see it, registered until it closes. */
  function track(ws: WebSocket, grant: TicketGrant): Terminal {
    const terminal: Terminal = {
      ws,
      grant,
      alive: true,
      lastInput: Date.now(),
      close: (message) => {
        if (message) send(ws, { type: "error", message });
        ws.close(1000);
      },
    };
    terminals.add(terminal);
    ws.on("pong", () => (terminal.alive = true));
    return terminal;
  }

  /**
   * A browser's terminal on another host's VM: kept here as a terminal (heartbeats, idle
   * time, sign-out end it), its frames piped to the owner.
   */
  async function proxy(ws: WebSocket, grant: TicketGrant, owner: Owner): Promise<void> {
    const terminal = track(ws, grant);
    ws.on("message", () => (terminal.lastInput = Date.now()));
    ws.on("close", () => terminals.delete(terminal));
    await proxyTerminal(ws, grant, owner, hangar.clusterKey);
  }

  async function attach(ws: WebSocket, grant: TicketGrant): Promise<void> {
    const cleanups: (() => void)[] = [];
    let ended = false;
    /** Runs `cleanup` when the socket closes, or at once if it already has. */
    const onEnd = (cleanup: () => void) => {
      if (ended) cleanup();
      else cleanups.push(cleanup);
    };
    const terminal = track(ws, grant);
    ws.on("close", () => {
      ended = true;
      terminals.delete(terminal);
      for (const cleanup of cleanups.splice(0)) cleanup();
    });
    // Frames that arrive while the terminal is being set up wait for its handler.
    const early: [Buffer, boolean][] = [];
    let handler: ((data: Buffer, binary: boolean) => void) | undefined;
    ws.on("message", (data: RawData, binary: boolean) => {
      terminal.lastInput = Date.now();
      const bytes = toBuffer(data);
      if (handler) handler(bytes, binary);
      else if (early.length < 256) early.push([bytes, binary]);
    });
    const onMessage = (next: (data: Buffer, binary: boolean) => void) => {
      handler = next;
      for (const [bytes, binary] of early.splice(0)) next(bytes, binary);
    };

    const vm = await hangar.db.vm.findUnique({ where: { id: grant.vmId } });
    if (!vm) return terminal.close("The VM no longer exists.");
    // A terminal that can change the VM is in its events, under the ticket's holder, as its
    // other actions are; one that only watches is not (every VM page watches the console).
    const record = (message: string) =>
      void hangar.recorder
        .record({ stream: "vm", vm: { id: vm.id, name: vm.name }, actor: grant.actor, userId: grant.userId, action: grant.kind, ok: true, message, live: true })
        .catch(() => undefined);

    const sendBytes = (bytes: Buffer) => {
      if (ws.readyState === ws.OPEN) ws.send(bytes, { binary: true });
    };

    if (grant.kind === "console") {
      const viewer: Viewer = {
        sendBytes,
        sendStatus: (state) => send(ws, { type: "status", state }),
        bufferedAmount: () => ws.bufferedAmount,
        close: (message) => terminal.close(message),
      };
      send(ws, { type: "status", state: vm.state });
      const attached = await hub.attach(vm.id, viewer);
      onEnd(attached.detach);
      let typed = false;
      onMessage((data, binary) => {
        if (!binary || grant.readOnly) return;
        // A shell's line editor asks the terminal where its cursor is (ESC[6n); every viewer's
        // xterm answers, and answers beyond the one it asked for arrive as typed keys. The
        // console is shared, so no viewer answers: the editor does without.
        const keys = withoutCursorReports(data);
        if (keys.length === 0) return;
        attached.write(keys);
        if (!typed) record("Typed into the serial console");
        typed = true;
      });
      return;
    }

    if (vm.state !== "Running" || !vm.sshPort) return terminal.close(`VM "${vm.name}" is ${vm.state}; start it first.`);
    const sshPort = vm.sshPort;
    const driver = hangar.driverFor(vm.id);

    if (grant.kind === "monitor") {
      // qemu serves one monitor client; a second would connect and hear nothing.
      if (monitors.has(vm.id)) return terminal.close(`The qemu monitor of VM "${vm.name}" is open in another terminal; close that one first.`);
      monitors.add(vm.id);
      onEnd(() => monitors.delete(vm.id));
      const monitor = await driver.monitor().catch(() => undefined);
      if (!monitor) return terminal.close("The qemu monitor does not answer.");
      onEnd(() => monitor.destroy());
      monitor.on("data", sendBytes);
      monitor.on("error", () => undefined);
      monitor.on("close", () => terminal.close());
      onMessage((data, binary) => binary && monitor.write(data));
      record("Opened the qemu monitor");
      return;
    }

    if (grant.kind === "display") {
      const screen = await driver.display().catch(() => undefined);
      if (!screen) return terminal.close("The VM's display does not answer; a VM started before Hangar had displays gets one when it next starts.");
      const display = pipeDisplay(screen, { sendBytes, bufferedAmount: () => ws.bufferedAmount, close: terminal.close }, { readOnly: grant.readOnly });
      onEnd(display.close);
      onMessage((data, binary) => binary && display.write(data));
      if (!grant.readOnly) record("Opened the display, with keyboard and mouse");
      return;
    }

    if (grant.kind === "tunnel") {
      const answers = async () => {
        const deadline = Date.now() + shellBootWaitMs;
        while (!(await driver.sshAnswers(sshPort).catch(() => false))) {
          if (ended || Date.now() >= deadline) return false;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return true;
      };
      if (!(await answers())) return terminal.close(`${BOOTING_MESSAGE} Gave up after ${Math.round(shellBootWaitMs / 1000)} s; try again in a moment.`);
      if (ended) return;
      const ssh = net.connect(sshPort, driver.sshHost());
      ssh.setNoDelay(true);
      const tunnel = pipeDisplay(ssh, { sendBytes, bufferedAmount: () => ws.bufferedAmount, close: terminal.close }, { readOnly: false, closedMessage: "" });
      onEnd(tunnel.close);
      onMessage((data, binary) => binary && tunnel.write(data));
      record("Opened a tunnel to the VM's SSH port, for the caller's own ssh client");
      return;
    }

    const identity = await driver.identity();
    const image = await hangar.db.image.findUnique({ where: { id: vm.imageId }, select: { loginUser: true } });
    if (ended) return;
    const user = image?.loginUser ?? HANGAR_LOGIN_USER;
    record(`Opened a shell as ${user}`);
    const shell = openShell(
      {
        host: driver.sshHost(),
        sshPort,
        user,
        privateKey: identity.privateKey,
        cols: 80,
        rows: 24,
        sshAnswers: () => driver.sshAnswers(sshPort),
        bootWaitMs: shellBootWaitMs,
      },
      {
        onData: sendBytes,
        onBooting: () => {
          send(ws, { type: "status", state: "Booting" });
          sendBytes(Buffer.from(`\x1b[2m[hangar] ${BOOTING_MESSAGE} Waiting for it…\x1b[0m\r\n`));
        },
        onReady: () => send(ws, { type: "status", state: "Running" }),
        onExit: (code) => send(ws, { type: "exit", code }),
        onError: (message) => send(ws, { type: "error", message }),
        onClose: () => ws.close(1000),
      },
    );
    onEnd(shell.close);
    onMessage((data, binary) => {
      if (binary) return shell.write(data);
      const control = decodeControl(data.toString("utf8"));
      if (control?.type === "resize") shell.resize(control.cols, control.rows);
    });
  }

  /**
   * Why the terminal's grant no longer holds, or undefined while it does: its session ended,
   * its token was revoked or expired, its user was disabled or removed, or lost the right it
   * was opened with (typing into a VM they no longer control, the monitor without admin).
   */
  async function revoked(grant: TicketGrant): Promise<string | undefined> {
    const user = await hangar.db.user.findUnique({ where: { id: grant.userId }, select: { role: true, disabled: true } });
    if (!user || user.disabled || !isRole(user.role)) return "Your account was disabled or removed.";
    if (grant.sessionId && !(await hangar.db.session.findUnique({ where: { id: grant.sessionId }, select: { id: true } }))) return "You signed out.";
    if (grant.tokenId) {
      const token = await hangar.db.apiToken.findUnique({ where: { id: grant.tokenId }, select: { revokedAt: true, expiresAt: true } });
      if (!token || token.revokedAt || (token.expiresAt && token.expiresAt <= new Date()))
        return "The API token this terminal was opened with was revoked or has expired.";
    }
    if (grant.kind === "monitor" && user.role !== "admin") return "Only admins may use the qemu monitor.";
    if (!grant.readOnly) {
      const vm = await hangar.db.vm.findUnique({ where: { id: grant.vmId }, select: { ownerId: true } });
      if (vm && !canControl({ userId: grant.userId, role: user.role }, vm)) return "You may no longer control this VM; open the terminal again to watch it.";
    }
    return undefined;
  }

  /** Closes every terminal whose grant no longer holds. A database that does not answer proves nothing. */
  function recheckGrants(): void {
    for (const terminal of terminals) {
      void revoked(terminal.grant).then(
        (reason) => reason && terminal.close(reason),
        () => undefined,
      );
    }
  }

  // Heartbeats: dead peers go; so do terminals that sat idle or whose grant no longer holds.
  const timer = setInterval(() => {
    for (const terminal of terminals) {
      if (!terminal.alive) {
        terminal.ws.terminate();
        continue;
      }
      terminal.alive = false;
      terminal.ws.ping();
      if (Date.now() - terminal.lastInput > idleMs) terminal.close(`Closed after ${Math.round(idleMs / 60_000)} minutes without input.`);
    }
    recheckGrants();
  }, heartbeatMs);
  timer.unref();
  const stopListening = onAccessChange(hangar.db, recheckGrants);

  return {
    handleUpgrade,
    /** Open terminals by kind, for tests and the status page. */
    counts(): Record<TerminalKind, number> {
      const counts: Record<TerminalKind, number> = { console: 0, shell: 0, monitor: 0, display: 0, tunnel: 0 };
      for (const terminal of terminals) counts[terminal.grant.kind] += 1;
      return counts;
    },
    /** Ends the terminals of one user (sign-out) right away. */
    closeForSession(sessionId: string): void {
      for (const terminal of terminals) if (terminal.grant.sessionId === sessionId) terminal.close("You signed out.");
    },
    close(): void {
      clearInterval(timer);
      stopListening();
      for (const terminal of terminals) terminal.ws.terminate();
      wss.close();
    },
  };
}

export type TerminalBridge = ReturnType<typeof createTerminalBridge>;
