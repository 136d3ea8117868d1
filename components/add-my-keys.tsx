"use client";
/**
 * Adds the person's own SSH keys (Account page) to a running VM: cloud-init gives keys only at
 * a VM's first boot, so one made before a key was added does not have it.
 */
import Link from "next/link";
import { useMutation, useQuery } from "@tanstack/react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";

export function AddMyKeys({ vmId }: { vmId: string }) {
  const trpc = useTRPC();
  const keys = useQuery(trpc.account.sshKeys.queryOptions());
  const add = useMutation(trpc.vm.addMyKeys.mutationOptions());
  if (keys.data?.length === 0) {
    return (
      <p className="muted">
        <Link href="/account">Add your SSH key</Link> to log in with it.
      </p>
    );
  }
  const done = add.data;
  return (
    <div className="buttons">
      <button type="button" className="secondary small" disabled={add.isPending || !keys.data} onClick={() => add.mutate({ id: vmId })}>
        {add.isPending ? "Adding…" : "Add my SSH keys"}
      </button>
      {done ? (
        <span className="muted" role="status">
          {done.added === 0 ? `User ${done.user} already has your keys.` : `Added ${done.added} of your keys for user ${done.user}.`}
        </span>
      ) : null}
      <ErrorAlert message={add.error ? errorText(add.error) : undefined} onDismiss={() => add.reset()} />
    </div>
  );
}
