"use client";
/**
 * The VM's screen (its VGA card) in noVNC, over the /ws/terminal bridge with a "display"
 * ticket. States as the terminals': VM not running (offer Start), connecting, connected,
 * disconnected (offer Reconnect). Readers see it view-only; the server holds them to it.
 */
import type RFB from "@novnc/novnc";
import { useMutation } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { z } from "zod/mini";
import { ErrorAlert, errorText } from "../error-alert.tsx";
import { useTRPC } from "../trpc.ts";

type Phase = "inactive" | "connecting" | "connected" | "disconnected";

/** The one server message a display carries besides RFB: why it was closed. */
const closeReason = z.object({ type: z.literal("error"), message: z.string() });

function reasonIn(text: string): string | undefined {
  try {
    const parsed = closeReason.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.message : undefined;
  } catch {
    return undefined;
  }
}

export function Display({ vmId, vmState, onStart }: { vmId: string; vmState: string; onStart?: () => void }) {
  const trpc = useTRPC();
  const frame = useRef<HTMLDivElement>(null);
  const screen = useRef<HTMLDivElement>(null);
  const client = useRef<RFB | undefined>(undefined);
  const [connectionPhase, setPhase] = useState<Phase>("connecting");
  const [message, setMessage] = useState<string>();
  const [readOnly, setReadOnly] = useState(false);
  const [name, setName] = useState("");
  const ticket = useMutation(trpc.terminal.ticket.mutationOptions());
  const askTicket = useRef(ticket.mutateAsync);
  useEffect(() => {
    askTicket.current = ticket.mutateAsync;
  }, [ticket.mutateAsync]);
  /** True from asking for a ticket until the client exists: one connection at a time. */
  const opening = useRef(false);
  /** False once the tab is gone: a connect still under way then lets go of what it made. */
  const mounted = useRef(true);
  const running = vmState === "Running";
  /** Derived, not stored: a stopped VM shows as such whatever the last connection did. */
  const phase: Phase = !running ? "inactive" : connectionPhase;

  const disconnect = useCallback(() => {
    const current = client.current;
    client.current = undefined;
    current?.disconnect();
  }, []);

  const connect = useCallback(async () => {
    if (opening.current || !screen.current) return;
    opening.current = true;
    disconnect();
    setMessage(undefined);
    setPhase("connecting");
    try {
      // noVNC touches the DOM (and awaits a codec probe) on import: the browser loads it, here.
      const [{ default: RfbClient }, granted] = await Promise.all([import("@novnc/novnc"), askTicket.current({ vmId, kind: "display" })]);
      if (!mounted.current || !screen.current) return;
      setReadOnly(granted.readOnly);
      const ws = new WebSocket(`${window.location.origin.replace(/^http/, "ws")}${granted.path}`);
      let reason: string | undefined;
      // noVNC reads the binary frames; a text frame is the server saying why it closes.
      ws.addEventListener("message", (event: MessageEvent<unknown>) => {
        if (typeof event.data === "string") reason = reasonIn(event.data) ?? reason;
      });
      const rfb = new RfbClient(screen.current, ws, { shared: true });
      rfb.viewOnly = granted.readOnly;
      rfb.scaleViewport = true;
      rfb.background = "#000";
      rfb.addEventListener("connect", () => setPhase("connected"));
      rfb.addEventListener("desktopname", (event) => setName(event.detail.name));
      rfb.addEventListener("disconnect", () => {
        if (client.current !== rfb) return;
        client.current = undefined;
        setMessage(reason);
        setPhase("disconnected");
      });
      client.current = rfb;
    } catch (error) {
      setMessage(errorText(error));
      setPhase("disconnected");
    } finally {
      opening.current = false;
    }
  }, [vmId, disconnect]);

  // The screen exists only while the VM runs: connect then, let go when it stops.
  useEffect(() => {
    if (!running) {
      disconnect();
      return;
    }
    if (!client.current) void connect();
  }, [running, connect, disconnect]);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      disconnect();
    };
  }, [disconnect]);

  return (
    <div className="terminal" ref={frame} data-testid="display" data-phase={phase}>
      <div className="terminal-bar">
        <span className="muted" data-testid="display-phase">
          {phase === "inactive" ? `The VM is ${vmState}.` : phase}
          {readOnly ? " · view-only" : ""}
          {name && phase === "connected" ? ` · ${name}` : ""}
        </span>
        <div className="buttons">
          {phase === "inactive" && onStart ? (
            <button type="button" className="small primary" onClick={onStart}>
              Start VM
            </button>
          ) : null}
          {phase === "disconnected" && running ? (
            <button type="button" className="small" onClick={() => void connect()}>
              Reconnect
            </button>
          ) : null}
          {phase === "connected" && !readOnly ? (
            <button type="button" className="small secondary" onClick={() => client.current?.sendCtrlAltDel()}>
              Ctrl+Alt+Del
            </button>
          ) : null}
          <button type="button" className="small secondary" onClick={() => void frame.current?.requestFullscreen?.()}>
            Full screen
          </button>
        </div>
      </div>
      {message ? <ErrorAlert message={message} /> : null}
      <div className="terminal-screen" ref={screen} />
    </div>
  );
}
