"use client";
/** Change a Stopped VM's CPUs and memory; qemu gets them at the next start. */
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";
import { CpuMemoryFields } from "./vm-fields.tsx";

export function ResourcesForm({ vmId, cpus, memoryMiB }: { vmId: string; cpus: number; memoryMiB: number }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const [cpusText, setCpus] = useState(String(cpus));
  const [memoryText, setMemory] = useState(String(memoryMiB));
  const resize = useMutation(trpc.vm.resize.mutationOptions(callbacks));

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    resize.mutate({ id: vmId, cpus: Number(cpusText), memoryMiB: Number(memoryText) });
  }

  return (
    <form onInvalidCapture={clearError} className="form" onSubmit={submit} aria-label="Change CPUs and memory">
      <div className="port-row">
        <CpuMemoryFields cpus={cpusText} memory={memoryText} onCpus={setCpus} onMemory={setMemory} />
        <button type="submit" className="secondary small" disabled={resize.isPending}>
          {resize.isPending ? "Saving…" : "Save"}
        </button>
      </div>
      <p className="muted">Takes effect at the next start.</p>
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
