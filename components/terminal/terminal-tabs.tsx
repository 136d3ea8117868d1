"use client";
/** Console, Display and Shell tabs on the VM page (and Monitor for admins). */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type KeyboardEvent } from "react";
import { canControl } from "../../lib/vocabulary.ts";
import { useMe } from "../session.tsx";
import { useTRPC } from "../trpc.ts";
import { Display } from "./display.tsx";
import { Terminal, type TerminalKind } from "./terminal.tsx";

type Tab = TerminalKind | "display";
const TAB_NAMES: Record<Tab, string> = { console: "Console", display: "Display", shell: "Shell", monitor: "Monitor" };

export function TerminalTabs({ vm }: { vm: { id: string; state: string; ownerId: string | null } }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const [kind, setKind] = useState<Tab>("console");
  const start = useMutation(trpc.vm.start.mutationOptions({ onSettled: () => queryClient.invalidateQueries(trpc.vm.pathFilter()) }));
  const controls = canControl(me, vm);
  const kinds: Tab[] = ["console", "display", ...(controls ? (["shell"] as const) : []), ...(me?.role === "admin" ? (["monitor"] as const) : [])];
  const onStart = controls ? () => start.mutate({ id: vm.id }) : undefined;

  // The tabs as a keyboard expects them (WAI-ARIA tabs): one stop for Tab, the arrows, Home and End move between them.
  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const at = kinds.indexOf(kind);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: kinds.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const next = kinds[(to + kinds.length) % kinds.length] ?? kind;
    setKind(next);
    document.getElementById(`terminal-tab-${next}`)?.focus();
  }

  return (
    <div className="stack">
      <div className="buttons" role="tablist" aria-label="Terminals" onKeyDown={onKeyDown}>
        {kinds.map((k) => (
          <button
            key={k}
            id={`terminal-tab-${k}`}
            type="button"
            role="tab"
            aria-selected={kind === k}
            aria-controls="terminal-panel"
            tabIndex={kind === k ? 0 : -1}
            className={kind === k ? "primary small" : "small"}
            onClick={() => setKind(k)}
          >
            {TAB_NAMES[k]}
          </button>
        ))}
      </div>
      <div id="terminal-panel" role="tabpanel" aria-labelledby={`terminal-tab-${kind}`}>
        {kind === "display" ? (
          <Display key={kind} vmId={vm.id} vmState={vm.state} onStart={onStart} />
        ) : (
          <Terminal key={kind} vmId={vm.id} kind={kind} vmState={vm.state} onStart={onStart} />
        )}
      </div>
    </div>
  );
}
