"use client";
/**
 * Warm pools: each pool's members and their states, a progress bar while it fills, the
 * size to edit, Acquire (shows where to SSH, with the key) and Release; a create form.
 */
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { CopyCommand } from "./copy-command.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatMemory, formatTime } from "./format.ts";
import { canControl, useMe } from "./session.tsx";
import { StateBadge } from "./state-badge.tsx";
import { useTRPC, type PoolRow, type RouterOutputs } from "./trpc.ts";

type Acquired = RouterOutputs["pool"]["acquire"];
const STAGING = ["Suspended", "Running", "Stopped"] as const;

export function PoolsPanel() {
  const trpc = useTRPC();
  const me = useMe();
  const filling = (pools: PoolRow[] | undefined) => pools?.some((pool) => pool.filling || pool.ready < pool.size) ?? false;
  // Members are VMs, so the live stream refreshes this too; while a pool fills, also every 2 s.
  const pools = useQuery(trpc.pool.list.queryOptions(undefined, { refetchInterval: (query) => (filling(query.state.data) ? 2000 : false) }));
  if (pools.isPending) return <p className="muted">Loading pools…</p>;
  if (pools.isError) return <ErrorAlert message={errorText(pools.error)} />;
  return (
    <div className="stack">
      {pools.data.length === 0 ? <p className="empty">No pools yet.</p> : null}
      {pools.data.map((pool) => (
        <PoolCard key={pool.id} pool={pool} />
      ))}
      {me?.role === "admin" ? <CreatePoolForm /> : null}
    </div>
  );
}

function PoolCard({ pool }: { pool: PoolRow }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const [error, setError] = useState<string>();
  const [acquired, setAcquired] = useState<Acquired>();
  const settle = {
    onMutate: () => setError(undefined),
    onError: (e: unknown) => setError(errorText(e)),
    onSettled: () => queryClient.invalidateQueries(trpc.pool.pathFilter()),
  };
  const acquire = useMutation(trpc.pool.acquire.mutationOptions({ ...settle, onSuccess: setAcquired }));
  const release = useMutation(trpc.pool.release.mutationOptions(settle));
  const resize = useMutation(trpc.pool.resize.mutationOptions(settle));
  const remove = useMutation(trpc.pool.delete.mutationOptions(settle));
  const admin = me?.role === "admin";

  function submitSize(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    resize.mutate({ id: pool.id, size: Number(new FormData(event.currentTarget).get("size")) });
  }

  return (
    <section className="card stack" data-testid="pool" data-pool-name={pool.name}>
      <div className="section-head">
        <h2>{pool.name}</h2>
        <div className="buttons">
          {me && me.role !== "viewer" ? (
            <button type="button" className="primary" disabled={acquire.isPending} onClick={() => acquire.mutate({ poolId: pool.id, timeoutSec: 120 })}>
              {acquire.isPending ? "Acquiring…" : "Acquire"}
            </button>
          ) : null}
          {admin ? (
            <button type="button" className="danger" onClick={() => window.confirm(`Delete pool "${pool.name}" and all its VMs?`) && remove.mutate({ id: pool.id })}>
              Delete pool
            </button>
          ) : null}
        </div>
      </div>
      <p className="muted">
        {pool.image.name} · {pool.cpus} CPU · {formatMemory(pool.memoryMiB)} · members wait {pool.staging}
      </p>
      <div className="port-row">
        <progress value={pool.ready} max={Math.max(pool.size, 1)} aria-label={`${pool.name} ready members`} />
        <span>
          {pool.ready} of {pool.size} ready{pool.filling ? ", filling…" : ""}
        </span>
      </div>
      {admin ? (
        <form className="port-row" onSubmit={submitSize}>
          <label className="field inline">
            <span>Size</span>
            <input name="size" type="number" min={0} max={32} defaultValue={pool.size} />
          </label>
          <button type="submit" disabled={resize.isPending}>
            Resize
          </button>
        </form>
      ) : null}
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      {acquired ? (
        <div className="stack" data-testid="acquired">
          <p>
            Acquired <Link href={`/vms/${acquired.vmId}`}>{acquired.name}</Link>. Save the key below as a file (mode 0600), then:
          </p>
          <CopyCommand label="SSH command" command={`ssh -p ${acquired.sshPort} -i ${acquired.name}.key ${acquired.user}@${acquired.host}`} />
          {acquired.privateKey ? (
            <details>
              <summary>Private key</summary>
              <pre className="serial">{acquired.privateKey}</pre>
            </details>
          ) : null}
        </div>
      ) : null}
      <table className="table compact">
        <thead>
          <tr>
            <th>Member</th>
            <th>State</th>
            <th>Acquired by</th>
            <th>Acquired at</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pool.vms.map((vm) => (
            <tr key={vm.id} data-testid="pool-member" data-vm-id={vm.id}>
              <td>
                <Link href={`/vms/${vm.id}`}>{vm.name}</Link>
              </td>
              <td>
                <StateBadge state={vm.state} />
              </td>
              <td>{vm.acquiredBy ?? "—"}</td>
              <td>{vm.acquiredAt ? formatTime(vm.acquiredAt) : "—"}</td>
              <td>
                {vm.acquiredAt && canControl(me, vm) ? (
                  <button type="button" className="small" disabled={release.isPending} onClick={() => release.mutate({ vmId: vm.id })}>
                    Release
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function CreatePoolForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const images = useQuery(trpc.image.list.queryOptions());
  const [error, setError] = useState<string>();
  const create = useMutation(
    trpc.pool.create.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSettled: () => queryClient.invalidateQueries(trpc.pool.pathFilter()),
    }),
  );
  const ready = images.data?.filter((image) => image.status === "ready") ?? [];

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    create.mutate({
      name: String(form.get("name") ?? ""),
      imageId: String(form.get("imageId") ?? ""),
      cpus: Number(form.get("cpus")),
      memoryMiB: Number(form.get("memoryMiB")),
      size: Number(form.get("size")),
      staging: String(form.get("staging")) as (typeof STAGING)[number],
    });
  }

  return (
    <form className="card form" onSubmit={submit}>
      <h2>New pool</h2>
      <div className="grid">
        <label className="field">
          <span>Pool name</span>
          <input name="name" required />
        </label>
        <label className="field">
          <span>Image</span>
          <select name="imageId" defaultValue={ready.find((i) => i.name === "hangar-tiny")?.id}>
            {ready.map((image) => (
              <option key={image.id} value={image.id}>
                {image.name}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>CPUs</span>
          <input name="cpus" type="number" min={1} max={16} defaultValue={1} />
        </label>
        <label className="field">
          <span>Memory (MiB)</span>
          <input name="memoryMiB" type="number" min={64} defaultValue={256} />
        </label>
        <label className="field">
          <span>Pool size</span>
          <input name="size" type="number" min={0} max={32} defaultValue={2} />
        </label>
        <label className="field">
          <span>Staging state</span>
          <select name="staging" defaultValue="Suspended">
            {STAGING.map((state) => (
              <option key={state}>{state}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <div className="buttons">
        <button type="submit" className="primary" disabled={create.isPending}>
          Create pool
        </button>
      </div>
    </form>
  );
}
