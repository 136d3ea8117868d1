"use client";
/** Console and Shell tabs on the VM page (and Monitor for admins). */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { canControl, useMe } from "../session.tsx";
import { useTRPC } from "../trpc.ts";
import { Terminal, type TerminalKind } from "./terminal.tsx";

export function TerminalTabs({ vm }: { vm: { id: string; state: string; ownerId: string | null } }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const [kind, setKind] = useState<TerminalKind>("console");
  const start = useMutation(trpc.vm.start.mutationOptions({ onSettled: () => queryClient.invalidateQueries(trpc.vm.pathFilter()) }));
  const controls = canControl(me, vm);
  const kinds: TerminalKind[] = ["console", ...(controls ? (["shell"] as const) : []), ...(me?.role === "admin" ? (["monitor"] as const) : [])];

  return (
    <div className="stack">
      <div className="buttons" role="tablist">
        {kinds.map((k) => (
          <button key={k} type="button" role="tab" aria-selected={kind === k} className={kind === k ? "primary small" : "small"} onClick={() => setKind(k)}>
            {k === "console" ? "Console" : k === "shell" ? "Shell" : "Monitor"}
          </button>
        ))}
      </div>
      <Terminal key={kind} vmId={vm.id} kind={kind} vmState={vm.state} onStart={controls ? () => start.mutate({ id: vm.id }) : undefined} />
    </div>
  );
}
