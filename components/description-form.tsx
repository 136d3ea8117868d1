"use client";
/** What a VM is for, in people's words: edited in place, saved on request. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { refreshVm } from "./refresh-vm.ts";
import { useTRPC } from "./trpc.ts";

/** The server's limit, said in its refusal too. */
const MAX_LENGTH = 2000;

export function DescriptionForm({ vmId, description }: { vmId: string; description: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [error, setError] = useState<string>();
  const save = useMutation(
    trpc.vm.describe.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      // The VM and its events: the change is recorded as an event.
      onSettled: () => refreshVm(queryClient, trpc, vmId),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    save.mutate({ id: vmId, description: String(new FormData(event.currentTarget).get("description") ?? "") });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="form" onSubmit={submit} aria-label="Description">
      <label className="field">
        <span>Description</span>
        <textarea name="description" rows={2} maxLength={MAX_LENGTH} defaultValue={description} placeholder="What this VM is for (optional)" />
      </label>
      <div className="buttons">
        <button type="submit" className="secondary small" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save description"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </form>
  );
}
