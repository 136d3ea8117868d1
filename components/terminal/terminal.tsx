"use client";
/**
 * One terminal: the VM's serial console, an SSH shell or the qemu monitor, in xterm.js over
 * the /ws/terminal bridge. States: VM not running (offer Start), connecting, connected,
 * disconnected (offer Reconnect). Output only ever goes into xterm, never into the DOM.
 */
import "@xterm/xterm/css/xterm.css";
import { useMutation } from "@tanstack/react-query";
import type { Terminal as Xterm } from "@xterm/xterm";
import { useCallback, useEffect, useRef, useState } from "react";
import { z } from "zod/mini";
import type { TerminalKind as AnyTerminalKind } from "../../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "../error-alert.tsx";
import { useTRPC } from "../trpc.ts";

/** The kinds shown in xterm; "display" is noVNC's (display.tsx), "tunnel" is for the CLI's ssh. */
export type TerminalKind = Exclude<AnyTerminalKind, "display" | "tunnel">;
type Phase = "inactive" | "connecting" | "connected" | "disconnected";

/** A control message from the bridge (server/terminal/protocol.ts): exit, error or status. */
const controlMessage = z.object({ type: z.string(), code: z.optional(z.number()), message: z.optional(z.string()), state: z.optional(z.string()) });

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The socket of one terminal session, with everything it holds; close() ends it. */
class TerminalConnection {
  private readonly ws: WebSocket;
  constructor(
    url: string,
    private readonly term: Xterm,
    handlers: { onOpen: () => void; onClose: (reason: string | undefined) => void; onStatus: (state: string) => void },
    private readonly readOnly: boolean,
  ) {
    let reason: string | undefined;
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      handlers.onOpen();
      this.resize();
    };
    this.ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== "string") return this.term.write(new Uint8Array(event.data));
      const message = controlMessage.safeParse(parseJson(event.data));
      if (!message.success) return;
      const { type, code, message: text, state } = message.data;
      if (type === "exit") reason = `The shell exited with code ${code ?? "?"}.`;
      if (type === "error") reason = text;
      if (type === "status" && state) handlers.onStatus(state);
    };
    this.ws.onclose = () => handlers.onClose(reason);
  }

  send(text: string): void {
    if (!this.readOnly && this.ws.readyState === WebSocket.OPEN) this.ws.send(new TextEncoder().encode(text));
  }

  resize(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "resize", cols: this.term.cols, rows: this.term.rows }));
  }

  close(): void {
    this.ws.onclose = null;
    this.ws.close();
  }
}

export function Terminal({ vmId, kind, vmState, onStart }: { vmId: string; kind: TerminalKind; vmState: string; onStart?: () => void }) {
  const trpc = useTRPC();
  const box = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const term = useRef<Xterm | undefined>(undefined);
  const fit = useRef<{ fit(): void } | undefined>(undefined);
  const connection = useRef<TerminalConnection | undefined>(undefined);
  const [connectionPhase, setPhase] = useState<Phase>("connecting");
  const [ready, setReady] = useState(false);
  const [message, setMessage] = useState<string>();
  /** What the VM's state means for this terminal: news, not an error, so not in the red alert. */
  const [stateNote, setStateNote] = useState<string>();
  const [title, setTitle] = useState("");
  const [readOnly, setReadOnly] = useState(false);
  const [paste, setPaste] = useState("");
  const ticket = useMutation(trpc.terminal.ticket.mutationOptions());
  const askTicket = useRef(ticket.mutateAsync);
  useEffect(() => {
    askTicket.current = ticket.mutateAsync;
  }, [ticket.mutateAsync]);
  /** True from asking for a ticket until the socket exists: one connection at a time. */
  const opening = useRef(false);
  const running = vmState === "Running";
  /** Derived, not stored: a stopped VM shows as such whatever the last connection did. */
  const phase: Phase = kind !== "console" && !running ? "inactive" : connectionPhase;

  // xterm touches the DOM on import, so it loads in the browser only.
  useEffect(() => {
    let disposed = false;
    let observer: ResizeObserver | undefined;
    void (async () => {
      const [{ Terminal: XtermClass }, { FitAddon }, { WebLinksAddon }] = await Promise.all([
        import("@xterm/xterm"),
        import("@xterm/addon-fit"),
        import("@xterm/addon-web-links"),
      ]);
      if (disposed || !box.current) return;
      const xterm = new XtermClass({ cursorBlink: true, fontSize: 13, scrollback: 5000, screenReaderMode: true, convertEol: false });
      const fitAddon = new FitAddon();
      xterm.loadAddon(fitAddon);
      xterm.loadAddon(new WebLinksAddon());
      xterm.open(box.current);
      fitAddon.fit();
      xterm.onData((data) => connection.current?.send(data));
      // Titles from the guest are shown as text by React, never as markup.
      xterm.onTitleChange(setTitle);
      xterm.onSelectionChange(() => {
        const selected = xterm.getSelection();
        if (selected) void navigator.clipboard?.writeText(selected).catch(() => undefined);
      });
      xterm.attachCustomKeyEventHandler((event) => {
        if (event.type === "keydown" && event.ctrlKey && event.shiftKey && event.code === "KeyV") {
          void navigator.clipboard
            ?.readText()
            .then((text) => xterm.paste(text))
            .catch(() => undefined);
          return false;
        }
        return true;
      });
      observer = new ResizeObserver(() => {
        fitAddon.fit();
        connection.current?.resize();
      });
      observer.observe(box.current);
      term.current = xterm;
      fit.current = fitAddon;
      setReady(true);
    })();
    return () => {
      disposed = true;
      observer?.disconnect();
      connection.current?.close();
      connection.current = undefined;
      term.current?.dispose();
      term.current = undefined;
    };
  }, []);

  const connect = useCallback(async () => {
    const xterm = term.current;
    if (!xterm || opening.current) return;
    opening.current = true;
    connection.current?.close();
    connection.current = undefined;
    setMessage(undefined);
    setStateNote(undefined);
    setPhase("connecting");
    try {
      const granted = await askTicket.current({ vmId, kind });
      setReadOnly(granted.readOnly);
      const url = `${window.location.origin.replace(/^http/, "ws")}${granted.path}`;
      connection.current = new TerminalConnection(
        url,
        xterm,
        {
          onOpen: () => setPhase("connected"),
          onClose: (reason) => {
            setStateNote(undefined);
            setMessage(reason);
            setPhase("disconnected");
          },
          onStatus: (state) =>
            setStateNote(
              state === "Running" ? undefined : kind === "console" ? `The VM is ${state}; its console carries on here once it runs.` : `The VM is ${state}.`,
            ),
        },
        granted.readOnly,
      );
    } catch (error) {
      setMessage(errorText(error));
      setPhase("disconnected");
    } finally {
      opening.current = false;
    }
  }, [kind, vmId]);

  // Connect when ready; a console stays attached across stops, a shell needs a running VM.
  useEffect(() => {
    if (!ready) return;
    if (kind !== "console" && !running) {
      connection.current?.close();
      connection.current = undefined;
      return;
    }
    if (!connection.current) void connect();
  }, [ready, running, kind, connect]);

  function sendText() {
    connection.current?.send(paste.endsWith("\n") ? paste : `${paste}\n`);
    setPaste("");
    term.current?.focus();
  }

  return (
    <div className="terminal" ref={frame} data-testid={`terminal-${kind}`} data-phase={phase}>
      <div className="terminal-bar">
        <span className="muted" data-testid="terminal-phase">
          {phase === "inactive" ? `The VM is ${vmState}.` : phase}
          {readOnly ? " · read-only" : ""}
          {title ? ` · ${title}` : ""}
        </span>
        <div className="buttons">
          {phase === "inactive" && onStart ? (
            <button type="button" className="small primary" onClick={onStart}>
              Start VM
            </button>
          ) : null}
          {phase === "disconnected" ? (
            <button type="button" className="small" onClick={() => void connect()}>
              Reconnect
            </button>
          ) : null}
          <button type="button" className="small secondary" onClick={() => void frame.current?.requestFullscreen?.()}>
            Full screen
          </button>
        </div>
      </div>
      {message ? <ErrorAlert message={message} /> : null}
      {stateNote ? (
        <p className="muted small" role="status">
          {stateNote}
        </p>
      ) : null}
      <div className="terminal-screen" ref={box} />
      {kind === "console" && !readOnly ? (
        <div className="port-row">
          <label className="field">
            <span>Send text to the console</span>
            <textarea rows={2} value={paste} onChange={(e) => setPaste(e.target.value)} />
          </label>
          <button type="button" className="small" disabled={phase !== "connected" || !paste} onClick={sendText}>
            Send
          </button>
        </div>
      ) : null}
    </div>
  );
}
