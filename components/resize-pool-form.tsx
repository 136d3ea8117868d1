"use client";
/**
 * A pool's size: a number and Resize. Growing starts members at once; shrinking deletes idle
 * ones. The label ("Size") is the caller's, for `inputId`.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";

export function ResizePoolForm({ poolId, size, inputId }: { poolId: string; size: number; inputId: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [value, setValue] = useState(String(size));
  const [shownSize, setShownSize] = useState(size);
  const [error, setError] = useState<string>();
  const resize = useMutation(
    trpc.pool.resize.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSettled: () => queryClient.invalidateQueries(trpc.pool.pathFilter()),
    }),
  );
  // Someone (or this form) changed the size: show the new one.
  if (size !== shownSize) {
    setShownSize(size);
    setValue(String(size));
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    resize.mutate({ id: poolId, size: Number(value) });
  }

  return (
    <div className="stack tight">
      <form onInvalidCapture={() => setError(undefined)} className="buttons" onSubmit={submit}>
        <input id={inputId} className="tiny" type="number" min={0} max={32} required value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" className="small" disabled={resize.isPending || value === String(size)}>
          Resize
        </button>
      </form>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </div>
  );
}
