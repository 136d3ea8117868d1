"use client";
/** What a VM is for, in people's words: edited in place, saved on request. */
import { useMutation } from "@tanstack/react-query";
import type { FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";

/** The server's limit, said in its refusal too. */
const MAX_LENGTH = 2000;

export function DescriptionForm({ vmId, description }: { vmId: string; description: string }) {
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const save = useMutation(trpc.vm.describe.mutationOptions(callbacks));

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    save.mutate({ id: vmId, description: String(new FormData(event.currentTarget).get("description") ?? "") });
  }

  return (
    <form onInvalidCapture={clearError} className="form" onSubmit={submit} aria-label="Description">
      <label className="field">
        <span>Description</span>
        <textarea name="description" rows={2} maxLength={MAX_LENGTH} defaultValue={description} placeholder="What this VM is for (optional)" />
      </label>
      <div className="buttons">
        <button type="submit" className="secondary small" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save description"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
