"use client";
/** Console, Display and Shell tabs on the VM page (and Monitor for admins). */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
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

  return (
    <div className="stack">
      <div className="buttons" role="tablist">
        {kinds.map((k) => (
          <button key={k} type="button" role="tab" aria-selected={kind === k} className={kind === k ? "primary small" : "small"} onClick={() => setKind(k)}>
            {TAB_NAMES[k]}
          </button>
        ))}
      </div>
      {kind === "display" ? (
        <Display key={kind} vmId={vm.id} vmState={vm.state} onStart={onStart} />
      ) : (
        <Terminal key={kind} vmId={vm.id} kind={kind} vmState={vm.state} onStart={onStart} />
      )}
    </div>
  );
}
