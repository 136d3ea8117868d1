"use client";
/** Protection (Proxmox's): while on, the VM cannot be deleted. A checkbox that saves as it changes. */
import { useMutation } from "@tanstack/react-query";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmToggle } from "./use-vm-change.ts";

export function ProtectionToggle({ vmId, protection, disabled }: { vmId: string; protection: boolean; disabled: boolean }) {
  const { trpc, error, clearError, callbacks, asked, ask } = useVmToggle(vmId);
  const save = useMutation(trpc.vm.setProtection.mutationOptions(callbacks));
  return (
    <>
      <label className="check">
        <input
          type="checkbox"
          checked={asked ?? protection}
          disabled={disabled || save.isPending}
          onChange={(e) => {
            ask(e.target.checked);
            save.mutate({ id: vmId, protection: e.target.checked });
          }}
        />
        Protect it from deletion
      </label>
      <ErrorAlert message={error} onDismiss={clearError} />
    </>
  );
}
