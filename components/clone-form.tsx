"use client";
/** Clone a Stopped VM: a new VM with a copy of its disk, its own key and hostname. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";
import { useSingleFlight } from "./use-single-flight.ts";
import { VmNameField } from "./vm-fields.tsx";

export function CloneForm({ vmId, vmName }: { vmId: string; vmName: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const once = useSingleFlight();
  const clone = useMutation(
    trpc.vm.clone.mutationOptions({
      onError: (e) => setError(errorText(e)),
      onSuccess: async (vm) => {
        await queryClient.invalidateQueries(trpc.vm.pathFilter());
        router.push(`/vms/${vm.id}`);
      },
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const name = String(new FormData(event.currentTarget).get("name") ?? "");
    once(() => {
      setError(undefined);
      return clone.mutateAsync({ id: vmId, name });
    });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit}>
      <div className="port-row">
        <VmNameField label="Clone name" defaultValue={`${vmName}-clone`.slice(0, 63)} />
        <button type="submit" disabled={clone.isPending}>
          {clone.isPending ? "Cloning…" : "Clone"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
