"use client";
/** Rename a VM, in any state; its guest takes the new hostname at its next boot. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";
import { VmNameField } from "./vm-fields.tsx";

export function RenameForm({ vmId, vmName }: { vmId: string; vmName: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const rename = useMutation(
    trpc.vm.rename.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      // The VM and its events: the change is recorded as an event.
      onSettled: () => refreshVm(queryClient, trpc, vmId),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    rename.mutate({ id: vmId, name: String(new FormData(event.currentTarget).get("name") ?? "").trim() });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit} aria-label="Rename">
      <div className="port-row">
        <VmNameField label="New name" defaultValue={vmName} />
        <button type="submit" className="secondary" disabled={rename.isPending}>
          {rename.isPending ? "Renaming…" : "Rename"}
        </button>
      </div>
      <p className="muted small">The guest takes the new hostname at its next boot.</p>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
