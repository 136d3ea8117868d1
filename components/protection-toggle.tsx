"use client";
/** Protection (Proxmox's): while on, the VM cannot be deleted. A checkbox that saves as it changes. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

export function ProtectionToggle({ vmId, protection, disabled }: { vmId: string; protection: boolean; disabled: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const save = useMutation(
    trpc.vm.setProtection.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSettled: () => refreshVm(queryClient, trpc, vmId),
    }),
  );
  return (
    <>
      <label className="check">
        <input
          type="checkbox"
          checked={save.isPending ? save.variables.protection : protection}
          disabled={disabled || save.isPending}
          onChange={(e) => save.mutate({ id: vmId, protection: e.target.checked })}
        />
        Protect it from deletion
      </label>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </>
  );
}
