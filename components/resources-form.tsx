"use client";
/** Change a Stopped VM's CPUs and memory; qemu gets them at the next start. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";
import { CpuMemoryFields } from "./vm-fields.tsx";

export function ResourcesForm({ vmId, cpus, memoryMiB }: { vmId: string; cpus: number; memoryMiB: number }) {
  const trpc = useTRPC();
  const [cpusText, setCpus] = useState(String(cpus));
  const [memoryText, setMemory] = useState(String(memoryMiB));
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
    resize.mutate({ id: vmId, cpus: Number(cpusText), memoryMiB: Number(memoryText) });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit} aria-label="Change CPUs and memory">
      <div className="port-row">
        <CpuMemoryFields cpus={cpusText} memory={memoryText} onCpus={setCpus} onMemory={setMemory} />
        <button type="submit" className="secondary small" disabled={resize.isPending}>
          {resize.isPending ? "Saving…" : "Save"}
        </button>
      </div>
      <p className="muted">Takes effect at the next start.</p>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
