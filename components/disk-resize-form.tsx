"use client";
/** Grow a Stopped VM's disk; the guest's cloud-init grows its root partition at the next boot. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

export function DiskResizeForm({ vmId, currentGiB }: { vmId: string; currentGiB: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const resize = useMutation(
    trpc.vm.resizeDisk.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      // The VM and its events: the change is recorded as an event.
      onSettled: () => refreshVm(queryClient, trpc, vmId),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    resize.mutate({ id: vmId, diskGiB: Number(new FormData(event.currentTarget).get("diskGiB") ?? 0) });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit} aria-label="Grow the disk">
      <div className="port-row">
        <label className="field">
          <span>New size (GiB)</span>
          <input name="diskGiB" type="number" min={Math.ceil(currentGiB)} max={4096} step={1} required defaultValue={Math.ceil(currentGiB) + 1} />
        </label>
        <button type="submit" className="secondary small" disabled={resize.isPending}>
          {resize.isPending ? "Growing…" : "Grow disk"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
