"use client";
/**
 * Actions on the VMs selected in the inventory (Proxmox's bulk start and stop): each one goes
 * to the VMs whose state allows it, four at a time, and the bar says how many went through
 * and, for each that did not, the server's sentence. Rows change through the live stream.
 */
import { useState, type ReactNode } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPCClient, type VmRow } from "./trpc.ts";
import { allows, type VmButton } from "./vm-actions.tsx";

const ACTIONS: readonly VmButton[] = ["Start", "Stop", "Restart", "Suspend", "Delete"];
/** Calls in flight at once: enough to be quick, few enough not to boot a host's worth of guests in one go. */
const AT_ONCE = 4;
const DONE: Record<VmButton, string> = { Start: "Started", Stop: "Stopped", Restart: "Restarted", Suspend: "Suspended", Delete: "Deleted" };

export function VmBulkActions({
  selected,
  onClear,
  onDeleted,
  onDone,
  more,
}: {
  selected: VmRow[];
  onClear: () => void;
  onDeleted: (ids: string[]) => void;
  /** After each action, once every call has answered. */
  onDone?: () => void;
  /** Offered beside the count: widening the selection to VMs on pages not loaded. */
  more?: ReactNode;
}) {
  const client = useTRPCClient();
  const [busy, setBusy] = useState<VmButton>();
  const [outcome, setOutcome] = useState<{ message: string; failures: string[] }>();

  async function run(action: VmButton) {
    const targets = selected.filter((vm) => allows(vm, action));
    if (action === "Delete" && !window.confirm(`Delete ${count(targets.length)}? Their disks are removed and cannot be recovered.`)) return;
    setBusy(action);
    setOutcome(undefined);
    const failures: string[] = [];
    const deleted: string[] = [];
    const queue = [...targets];
    const worker = async () => {
      for (let vm = queue.shift(); vm; vm = queue.shift()) {
        try {
          if (action === "Start") await client.vm.start.mutate({ id: vm.id });
          else if (action === "Stop") await client.vm.stop.mutate({ id: vm.id });
          else if (action === "Restart") await client.vm.restart.mutate({ id: vm.id });
          else if (action === "Suspend") await client.vm.suspend.mutate({ id: vm.id });
          else {
            await client.vm.delete.mutate({ id: vm.id });
            deleted.push(vm.id);
          }
        } catch (error) {
          failures.push(`${vm.name}: ${errorText(error)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(AT_ONCE, targets.length) }, worker));
    if (deleted.length > 0) onDeleted(deleted);
    setOutcome({ message: `${DONE[action]} ${count(targets.length - failures.length)}.`, failures });
    setBusy(undefined);
    onDone?.();
  }

  return (
    <div className="bulk-bar" role="toolbar" aria-label="Selected VMs">
      <span>{count(selected.length)} selected</span>
      {more}
      <div className="buttons">
        {ACTIONS.map((action) => {
          const allowed = selected.filter((vm) => allows(vm, action)).length;
          return (
            <button
              key={action}
              type="button"
              className={action === "Delete" ? "danger" : action === "Start" ? "primary" : undefined}
              disabled={busy !== undefined || allowed === 0}
              title={allowed < selected.length ? `${count(allowed)} of the selected can be told to ${action.toLowerCase()}` : undefined}
              onClick={() => void run(action)}
            >
              {action} {allowed > 0 ? `(${allowed})` : ""}
            </button>
          );
        })}
        <button type="button" className="link-button" onClick={onClear} disabled={busy !== undefined}>
          Clear selection
        </button>
        {busy ? <span className="muted">working…</span> : null}
      </div>
      {outcome ? (
        <p role="status" className="small">
          {outcome.message}
        </p>
      ) : null}
      {outcome && outcome.failures.length > 0 ? (
        <ErrorAlert message={`Not done: ${outcome.failures.join("; ")}`} onDismiss={() => setOutcome({ ...outcome, failures: [] })} />
      ) : null}
    </div>
  );
}

function count(n: number): string {
  return `${n} VM${n === 1 ? "" : "s"}`;
}
