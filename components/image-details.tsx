"use client";
/** One image: its size, format, sum and what uses it; admins delete it once nothing does. */
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatBytes, formatTime } from "./format.ts";
import { useMe } from "./session.tsx";
import { StateBadge } from "./state-badge.tsx";
import { useTRPC } from "./trpc.ts";

export function ImageDetails({ id }: { id: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const queryClient = useQueryClient();
  const me = useMe();
  const [error, setError] = useState<string>();
  const query = useQuery(trpc.image.get.queryOptions({ id }));
  const remove = useMutation(
    trpc.image.delete.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSuccess: async () => {
        await queryClient.invalidateQueries(trpc.image.pathFilter());
        router.push("/images");
      },
    }),
  );

  if (query.isPending) return <p className="muted">Loading image…</p>;
  if (query.isError) {
    return (
      <>
        <ErrorAlert message={errorText(query.error)} />
        <p>
          <Link href="/images">Back to all images</Link>
        </p>
      </>
    );
  }
  const image = query.data;
  const inUse = image.vms.length + image.pools.length > 0;

  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link href="/images">Images</Link> /
          </p>
          <h1>{image.name}</h1>
        </div>
        {me?.role === "admin" ? (
          <button
            type="button"
            className="danger"
            disabled={remove.isPending || inUse}
            title={inUse ? "VMs or pools use this image; delete them first." : undefined}
            onClick={() => {
              if (window.confirm(`Delete image ${image.name}? Its file leaves the store.`)) remove.mutate({ id: image.id });
            }}
          >
            {remove.isPending ? "Deleting…" : "Delete"}
          </button>
        ) : null}
      </div>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <section className="card">
        <h2>Properties</h2>
        <dl className="props">
          <dt>Status</dt>
          <dd>{image.status}</dd>
          <dt>Format</dt>
          <dd>{image.format}</dd>
          <dt>Size</dt>
          <dd>{image.sizeBytes > 0n ? formatBytes(image.sizeBytes) : "—"}</dd>
          <dt>SHA-256</dt>
          <dd>
            <code>{image.sha256 ?? "—"}</code>
          </dd>
          <dt>Boots</dt>
          <dd>{image.directBoot ? "its own kernel, given directly" : `through the firmware (${image.firmware === "uefi" ? "UEFI" : "BIOS"})`}</dd>
          <dt>Login account</dt>
          <dd>
            <code>{image.loginUser}</code>
          </dd>
          {image.path ? (
            <>
              <dt>File</dt>
              <dd>
                <code>{image.path}</code>
              </dd>
            </>
          ) : null}
          <dt>Imported</dt>
          <dd>{formatTime(image.createdAt)}</dd>
          {image.error ? (
            <>
              <dt>Error</dt>
              <dd className="bad">{image.error}</dd>
            </>
          ) : null}
        </dl>
      </section>
      <section className="card">
        <h2>Used by</h2>
        {!inUse ? <p className="muted">No VM or pool uses this image.</p> : null}
        {image.vms.length > 0 ? (
          <ul data-testid="image-vms">
            {image.vms.map((vm) => (
              <li key={vm.id}>
                <Link href={`/vms/${vm.id}`}>{vm.name}</Link> <StateBadge state={vm.state} />
              </li>
            ))}
          </ul>
        ) : null}
        {image.pools.length > 0 ? (
          <ul>
            {image.pools.map((pool) => (
              <li key={pool.id}>pool {pool.name}</li>
            ))}
          </ul>
        ) : null}
      </section>
    </div>
  );
}
