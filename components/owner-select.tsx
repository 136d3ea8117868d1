"use client";
/**
 * Who owns a VM. Admins give it to another user (an operator or admin) or to nobody; the
 * change saves as it is chosen. Others read the owner.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { ErrorAlert } from "./error-alert.tsx";
import { useMe } from "./session.tsx";
import { useVmChange } from "./use-vm-change.ts";

const NOBODY = "";

export function OwnerSelect({ vmId, owner, disabled }: { vmId: string; owner: { id: string; email: string } | null; disabled: boolean }) {
  const me = useMe();
  const admin = me?.role === "admin";
  const { trpc, error, clearError, callbacks } = useVmChange(vmId);
  const users = useQuery({ ...trpc.user.list.queryOptions(), enabled: admin });
  const save = useMutation(trpc.vm.setOwner.mutationOptions(callbacks));
  if (!admin) return <>{owner?.email ?? "nobody (admins control it)"}</>;
  // Viewers control no VM, so they are no choice; the current owner stays listed whatever their role.
  const choices = (users.data ?? []).filter((user) => user.role !== "viewer" || user.id === owner?.id);
  return (
    <>
      <select
        aria-label="Owner"
        className="inline-choice"
        value={owner?.id ?? NOBODY}
        disabled={disabled || save.isPending || !users.data}
        onChange={(e) => save.mutate({ id: vmId, ownerId: e.target.value === NOBODY ? null : e.target.value })}
      >
        <option value={NOBODY}>nobody (admins control it)</option>
        {owner && !choices.some((user) => user.id === owner.id) ? <option value={owner.id}>{owner.email}</option> : null}
        {choices.map((user) => (
          <option key={user.id} value={user.id}>
            {user.email}
          </option>
        ))}
      </select>
      <ErrorAlert message={error} onDismiss={clearError} />
    </>
  );
}
