"use client";
/**
 * Whether a VM starts when its host boots: a checkbox that saves as it changes, and, while
 * it is on, where the VM comes in the start order and how long the next one waits for it
 * (Proxmox's start order and delay), saved on request.
 */
import { useMutation } from "@tanstack/react-query";
import type { FormEvent } from "react";
import { ErrorAlert } from "./error-alert.tsx";
import { useVmToggle } from "./use-vm-change.ts";

interface Props {
  vmId: string;
  autostart: boolean;
  order: number | null;
  delaySec: number;
  disabled: boolean;
}

export function AutostartToggle({ vmId, autostart, order, delaySec, disabled }: Props) {
  const { trpc, error, clearError, callbacks, asked, ask } = useVmToggle(vmId);
  const save = useMutation(trpc.vm.setAutostart.mutationOptions(callbacks));
  const on = asked ?? autostart;

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const orderText = String(form.get("order") ?? "").trim();
    save.mutate({ id: vmId, autostart: true, order: orderText === "" ? null : Number(orderText), delaySec: Number(form.get("delaySec") || 0) });
  }

  return (
    <>
      <label className="check">
        <input
          type="checkbox"
          checked={on}
          disabled={disabled || save.isPending}
          onChange={(e) => {
            ask(e.target.checked);
            save.mutate({ id: vmId, autostart: e.target.checked });
          }}
        />
        Start when its host boots
      </label>
      {on && !disabled ? (
        <form className="inline-form" aria-label="Start order" onSubmit={submit} key={`${order ?? ""}-${delaySec}`}>
          <label className="field inline">
            <span>Order</span>
            <input
              name="order"
              type="number"
              min={0}
              max={9999}
              defaultValue={order ?? ""}
              placeholder="any"
              title="Lower starts first; empty: after those with one"
            />
          </label>
          <label className="field inline">
            <span>Then wait (s)</span>
            <input name="delaySec" type="number" min={0} max={3600} defaultValue={delaySec} />
          </label>
          <button type="submit" className="secondary small" disabled={save.isPending}>
            Save order
          </button>
        </form>
      ) : null}
      <ErrorAlert message={error} onDismiss={clearError} />
    </>
  );
}
