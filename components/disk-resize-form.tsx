"use client";
/** Grow a Stopped or Running VM's disk; the guest's cloud-init grows its root partition at the next boot. */
import { useMutation } from "@tanstack/react-query";
import type { FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";

export function DiskResizeForm({ vmId, currentGiB }: { vmId: string; currentGiB: number }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const resize = useMutation(trpc.vm.resizeDisk.mutationOptions(callbacks));

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    resize.mutate({ id: vmId, diskGiB: Number(new FormData(event.currentTarget).get("diskGiB") ?? 0) });
  }

  return (
    <form onInvalidCapture={clearError} className="form" onSubmit={submit} aria-label="Grow the disk">
      <div className="port-row">
        <label className="field">
          <span>New size (GiB)</span>
          <input name="diskGiB" type="number" min={Math.ceil(currentGiB)} max={4096} step={1} required defaultValue={Math.ceil(currentGiB) + 1} />
        </label>
        <button type="submit" className="secondary small" disabled={resize.isPending}>
          {resize.isPending ? "Growing…" : "Grow disk"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
