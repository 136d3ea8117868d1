"use client";
/**
 * A VM's port forwards: host port (0 = any free port) → guest port, and the port bound.
 * Its controllers add and remove forwards at any time; a running VM gets them at once,
 * and every start sets them up again on the same host port while it is free.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC, type VmDetail } from "./trpc.ts";
import { useSingleFlight } from "./use-single-flight.ts";

export function PortForwardsTable({ vm, canChange }: { vm: Pick<VmDetail, "id" | "ports" | "sshPort" | "state">; canChange: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const [hostPort, setHostPort] = useState("");
  const [guestPort, setGuestPort] = useState("");
  const [error, setError] = useState<string>();
  const once = useSingleFlight();
  const refresh = () => queryClient.invalidateQueries(trpc.vm.get.queryFilter({ id: vm.id }));
  const add = useMutation(
    trpc.vm.addForward.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSuccess: () => {
        setHostPort("");
        setGuestPort("");
      },
      onSettled: refresh,
    }),
  );
  const remove = useMutation(
    trpc.vm.removeForward.mutationOptions({ onMutate: () => setError(undefined), onError: (e) => setError(errorText(e)), onSettled: refresh }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    once(() => add.mutateAsync({ id: vm.id, hostPort: Number(hostPort || 0), guestPort: Number(guestPort) }));
  }

  return (
    <>
      <table className="table compact narrow" data-testid="port-forwards">
        <thead>
          <tr>
            <th className="num">Host</th>
            <th aria-hidden="true"></th>
            <th className="num">Guest</th>
            <th className="num">Bound port</th>
            {canChange ? <th aria-label="Actions"></th> : null}
          </tr>
        </thead>
        <tbody>
          <tr>
            <td className="num">{vm.sshPort ?? "any"}</td>
            <td aria-hidden="true">→</td>
            <td className="num">22 (SSH)</td>
            <td className="num">{vm.state === "Running" ? (vm.sshPort ?? "—") : "—"}</td>
            {canChange ? <td></td> : null}
          </tr>
          {vm.ports.map((port) => (
            <tr key={port.id} data-guest-port={port.guestPort}>
              <td className="num">{port.hostPort === 0 ? "any" : port.hostPort}</td>
              <td aria-hidden="true">→</td>
              <td className="num">{port.guestPort}</td>
              <td className="num" data-testid="bound-port">
                {vm.state === "Running" ? (port.boundPort ?? "—") : "—"}
              </td>
              {canChange ? (
                <td>
                  <button
                    type="button"
                    className="link-button"
                    disabled={remove.isPending}
                    onClick={() => remove.mutate({ id: vm.id, guestPort: port.guestPort })}
                  >
                    Remove
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {canChange ? (
        <form onInvalidCapture={() => setError(undefined)} className="port-row" onSubmit={submit} aria-label="Add a port forward">
          <label className="field inline" htmlFor={`${id}-host`}>
            <span>Host port</span>
            <input id={`${id}-host`} type="number" min={0} max={65535} value={hostPort} placeholder="0 = any" onChange={(e) => setHostPort(e.target.value)} />
          </label>
          <span aria-hidden="true">→</span>
          <label className="field inline" htmlFor={`${id}-guest`}>
            <span>Guest port</span>
            <input id={`${id}-guest`} type="number" min={1} max={65535} required value={guestPort} onChange={(e) => setGuestPort(e.target.value)} />
          </label>
          <button type="submit" className="secondary small" disabled={add.isPending}>
            {add.isPending ? "Adding…" : "Add forward"}
          </button>
        </form>
      ) : null}
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
    </>
  );
}
