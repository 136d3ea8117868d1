"use client";
/** Change a Stopped VM's CPUs and memory; qemu gets them at the next start. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { VM_LIMITS } from "../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

export function ResourcesForm({ vmId, cpus, memoryMiB }: { vmId: string; cpus: number; memoryMiB: number }) {
  const trpc = useTRPC();
  const id = useId();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const resize = useMutation(
    trpc.vm.resize.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      // The VM and its events: the change is recorded as an event.
      onSettled: () => refreshVm(queryClient, trpc, vmId),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    resize.mutate({ id: vmId, cpus: Number(form.get("cpus") ?? cpus), memoryMiB: Number(form.get("memoryMiB") ?? memoryMiB) });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit} aria-label="Change CPUs and memory">
      <div className="port-row">
        <div className="field">
          <label htmlFor={`${id}-cpus`}>CPUs</label>
          <input id={`${id}-cpus`} name="cpus" type="number" min={VM_LIMITS.cpus.min} max={VM_LIMITS.cpus.max} step={1} required defaultValue={cpus} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-memory`}>Memory (MiB)</label>
          <input
            id={`${id}-memory`}
            name="memoryMiB"
            type="number"
            min={VM_LIMITS.memoryMiB.min}
            max={VM_LIMITS.memoryMiB.max}
            step={1}
            required
            defaultValue={memoryMiB}
          />
        </div>
        <button type="submit" className="secondary small" disabled={resize.isPending}>
          {resize.isPending ? "Saving…" : "Save"}
        </button>
      </div>
      <p className="muted">Takes effect at the next start.</p>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
