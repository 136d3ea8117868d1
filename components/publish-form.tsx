"use client";
/** Make an image of a Stopped VM's disk (admins): new VMs can then be created from it. */
import { useMutation } from "@tanstack/react-query";
import Link from "next/link";
import type { FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";
import { VmNameField } from "./vm-fields.tsx";

export function PublishForm({ vmId, vmName }: { vmId: string; vmName: string }) {
  const { trpc, queryClient, error, clearError, callbacks } = useVmChange(vmId);
  const publish = useMutation(
    trpc.vm.publish.mutationOptions({
      onMutate: callbacks.onMutate,
      onError: callbacks.onError,
      onSuccess: () => Promise.all([queryClient.invalidateQueries(trpc.image.pathFilter()), callbacks.onSettled()]),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    publish.mutate({ id: vmId, name: String(new FormData(event.currentTarget).get("name") ?? "").trim() });
  }

  return (
    <form onInvalidCapture={clearError} className="form" onSubmit={submit} aria-label="Make an image">
      <div className="port-row">
        <VmNameField label="Image name" defaultValue={`${vmName}-image`.slice(0, 63)} />
        <button type="submit" className="secondary" disabled={publish.isPending}>
          {publish.isPending ? "Making the image…" : "Make image"}
        </button>
      </div>
      <p className="muted small">The disk as it is now, without its snapshots. Each VM made from it is a new instance to cloud-init.</p>
      {publish.data ? (
        <p role="status" className="small">
          Image <Link href={`/images/${publish.data.id}`}>{publish.data.name}</Link> is ready.
        </p>
      ) : null}
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
