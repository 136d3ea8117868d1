"use client";
/** A VM's tags, typed as words separated by spaces or commas; saved on request. */
import { useMutation } from "@tanstack/react-query";
import type { FormEvent } from "react";
import { TAG_RULE, splitTags } from "../lib/vocabulary.ts";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmChange } from "./use-vm-change.ts";

export function TagsForm({ vmId, tags }: { vmId: string; tags: readonly string[] }) {
  const { trpc, queryClient, error, clearError, callbacks } = useVmChange(vmId);
  const save = useMutation(
    trpc.vm.setTags.mutationOptions({
      ...callbacks,
      // The inventory's Tag filter offers the tags in use.
      onSettled: async () => {
        await queryClient.invalidateQueries({ queryKey: trpc.vm.listTags.queryKey() });
        await callbacks.onSettled();
      },
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    save.mutate({ id: vmId, tags: splitTags(String(new FormData(event.currentTarget).get("tags") ?? "")) });
  }

  return (
    <form className="form" onSubmit={submit} aria-label="Tags">
      <label className="field">
        <span>Tags</span>
        <input
          name="tags"
          defaultValue={tags.join(" ")}
          placeholder="web team-a (optional)"
          autoComplete="off"
          spellCheck={false}
          title={`Separated by spaces; each ${TAG_RULE}`}
        />
      </label>
      <div className="buttons">
        <button type="submit" className="secondary small" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save tags"}
        </button>
      </div>
      <ErrorAlert message={error} onDismiss={clearError} />
    </form>
  );
}
