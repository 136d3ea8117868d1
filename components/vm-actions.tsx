"use client";
/**
 * The buttons for the actions the VM's state allows (Start, or Resume for a Suspended VM;
 * Stop, Restart, Suspend, Delete), with the server's sentence in an inline alert when one fails.
 */
import { useMutation } from "@tanstack/react-query";
import { useRef } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { canControl } from "../lib/vocabulary.ts";
import { useMe } from "./session.tsx";
import type { ButtonAction, VmRow } from "./trpc.ts";
import { useVmChange } from "./use-vm-change.ts";

const SHOWN: readonly VmButton[] = ["Start", "Stop", "Restart", "Suspend", "Delete"];

/** Restart is Stop then Start (vm.restart), not a state of its own: offered where Stop is, on a running VM. */
export type VmButton = ButtonAction | "Restart";

/** Does the VM's state allow `action` now? A protected VM is not offered Delete. */
export function allows(vm: Pick<VmRow, "actions" | "state" | "protection">, action: VmButton): boolean {
  if (action === "Restart") return vm.state === "Running" && vm.actions.includes("Stop");
  if (action === "Delete" && vm.protection) return false;
  return vm.actions.includes(action);
}

export function VmActions({ vm, onDeleted }: { vm: Pick<VmRow, "id" | "name" | "actions" | "ownerId" | "state" | "protection">; onDeleted?: () => void }) {
  const me = useMe();
  // The list rows arrive through the live stream; asking for the whole list again here would
  // cost every action a full inventory. The VM's own page is read again (errors leave no event).
  const { trpc, queryClient, error, clearError, callbacks: settle } = useVmChange(vm.id, { withEvents: false });
  const start = useMutation(trpc.vm.start.mutationOptions(settle));
  const stop = useMutation(trpc.vm.stop.mutationOptions(settle));
  const suspend = useMutation(trpc.vm.suspend.mutationOptions(settle));
  const restart = useMutation(trpc.vm.restart.mutationOptions(settle));
  const remove = useMutation(
    trpc.vm.delete.mutationOptions({
      ...settle,
      onSuccess: () => {
        queryClient.removeQueries(trpc.vm.get.queryFilter({ id: vm.id }));
        onDeleted?.();
      },
    }),
  );
  const busy = start.isPending || stop.isPending || restart.isPending || suspend.isPending || remove.isPending;

  // `busy` reaches React a tick after mutate(), too late for a double-click's second click,
  // which the server would refuse ("is Starting") while the first one succeeds.
  const acting = useRef(false);
  function run(action: VmButton) {
    if (acting.current) return;
    acting.current = true;
    const input = { id: vm.id };
    const done = {
      onSettled: () => {
        acting.current = false;
      },
    };
    if (action === "Start") start.mutate(input, done);
    else if (action === "Stop") stop.mutate(input, done);
    else if (action === "Restart") restart.mutate(input, done);
    else if (action === "Suspend") suspend.mutate(input, done);
    else if (window.confirm(`Delete VM "${vm.name}"? Its disk is removed and cannot be recovered.`)) remove.mutate(input, done);
    else acting.current = false;
  }

  // Viewers, and operators on VMs they do not own, get no buttons: the server would refuse.
  const actions = canControl(me, vm) ? SHOWN.filter((action) => allows(vm, action)) : [];
  return (
    <div className="vm-actions">
      <div className="buttons">
        {actions.map((action) => (
          <button
            key={action}
            type="button"
            className={action === "Delete" ? "danger" : action === "Start" ? "primary" : undefined}
            disabled={busy}
            onClick={() => run(action)}
          >
            {action === "Start" && vm.state === "Suspended" ? "Resume" : action}
          </button>
        ))}
        {busy ? <span className="muted">working…</span> : null}
      </div>
      <ErrorAlert message={error} onDismiss={clearError} />
    </div>
  );
}
