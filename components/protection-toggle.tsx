"use client";
/** Protection (Proxmox's): while on, the VM cannot be deleted. A checkbox that saves as it changes. */
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";

export function ProtectionToggle({ vmId, protection, disabled }: { vmId: string; protection: boolean; disabled: boolean }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  // What was asked for, set in the click's own render: the mutation's pending state arrives a
  // tick later, and until then the box showed the old value again.
  const [asked, setAsked] = useState<boolean>();
  const save = useMutation(
    trpc.vm.setProtection.mutationOptions({
      ...callbacks,
      onSettled: async () => {
        await callbacks.onSettled();
        setAsked(undefined);
      },
    }),
  );
  return (
    <>
      <label className="check">
        <input
          type="checkbox"
          checked={asked ?? protection}
          disabled={disabled || save.isPending}
          onChange={(e) => {
            setAsked(e.target.checked);
            save.mutate({ id: vmId, protection: e.target.checked });
          }}
        />
        Protect it from deletion
      </label>
      <ErrorAlert message={error} onDismiss={clearError} />
    </>
  );
}
