"use client";
/** Rename a VM, in any state; its guest takes the new hostname at its next boot. */
import { useMutation } from "@tanstack/react-query";
import type { FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";
import { VmNameField } from "./vm-fields.tsx";

export function RenameForm({ vmId, vmName }: { vmId: string; vmName: string }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const rename = useMutation(trpc.vm.rename.mutationOptions(callbacks));

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    rename.mutate({ id: vmId, name: String(new FormData(event.currentTarget).get("name") ?? "").trim() });
  }

  return (
    <form onInvalidCapture={clearError} className="form" onSubmit={submit} aria-label="Rename">
      <div className="port-row">
        <VmNameField label="New name" defaultValue={vmName} />
        <button type="submit" className="secondary" disabled={rename.isPending}>
          {rename.isPending ? "Renaming…" : "Rename"}
        </button>
      </div>
      <p className="muted small">The guest takes the new hostname at its next boot.</p>
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
