"use client";
/** Whether a VM starts when its host boots: a checkbox that saves as it changes. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

export function AutostartToggle({ vmId, autostart, disabled }: { vmId: string; autostart: boolean; disabled: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  // What was asked for, shown until the VM is read again with it (or the change failed).
  const [asked, setAsked] = useState<boolean>();
  const save = useMutation(
    trpc.vm.setAutostart.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSettled: async () => {
        await refreshVm(queryClient, trpc, vmId);
        setAsked(undefined);
      },
    }),
  );
  return (
    <>
      <label className="check">
        <input
          type="checkbox"
          checked={asked ?? autostart}
          disabled={disabled || save.isPending}
          onChange={(e) => {
            setAsked(e.target.checked);
            save.mutate({ id: vmId, autostart: e.target.checked });
          }}
        />
        Start when its host boots
      </label>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </>
  );
}
