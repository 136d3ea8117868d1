"use client";
/**
 * What every form on a VM's page does around its mutation: clear the last error when it is
 * sent, keep the server's sentence when it fails, and read the VM and its events again once
 * it is done (the change is recorded as an event).
 */
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

/**
 * `withEvents: false` reads the VM alone again: for the lifecycle buttons, whose events and
 * list rows arrive through the live stream anyway.
 */
export function useVmChange(vmId: string, { withEvents = true }: { withEvents?: boolean } = {}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const callbacks = {
    onMutate: () => setError(undefined),
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () => (withEvents ? refreshVm(queryClient, trpc, vmId) : queryClient.invalidateQueries(trpc.vm.get.queryFilter({ id: vmId }))),
  };
  return { trpc, queryClient, error, clearError: () => setError(undefined), callbacks };
}

/**
 * useVmChange for a checkbox that saves as it changes: `asked` is what was clicked, set in
 * the click's own render and shown until the VM is read again. The mutation's pending state
 * arrives a tick after the click, and until then a box that followed it showed the old value.
 */
export function useVmToggle(vmId: string) {
  const change = useVmChange(vmId);
  const [asked, setAsked] = useState<boolean>();
  const callbacks = {
    ...change.callbacks,
    onSettled: async () => {
      await change.callbacks.onSettled();
      setAsked(undefined);
    },
  };
  return { ...change, callbacks, asked, ask: setAsked };
}
