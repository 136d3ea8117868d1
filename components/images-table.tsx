"use client";
/**
 * The base images. While an import runs the list is refetched every second for its
 * progress bar; otherwise it is fetched once.
 */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatBytes } from "./format.ts";
import { useTRPC, type ImageRow } from "./trpc.ts";

function ImageStatus({ image }: { image: ImageRow }) {
  if (image.status === "importing") {
    const total = Number(image.sizeBytes);
    const done = Number(image.progress);
    return (
      <span className="progress-cell">
        <span className="badge badge-busy">importing</span>
        {total > 0 ? <progress value={done} max={total} aria-label={`Import of ${image.name}`} /> : <progress aria-label={`Import of ${image.name}`} />}
        <span className="muted small">{total > 0 ? `${Math.floor((done / total) * 100)}%` : formatBytes(done)}</span>
      </span>
    );
  }
  if (image.status === "failed") {
    return (
      <span>
        <span className="badge badge-bad">failed</span> <span className="bad small">{image.error}</span>
      </span>
    );
  }
  return <span className="badge badge-ok">{image.status}</span>;
}

export function ImagesTable() {
  const trpc = useTRPC();
  const images = useQuery({
    ...trpc.image.list.queryOptions(),
    refetchInterval: (query) => (query.state.data?.some((image) => image.status === "importing") ? 1000 : false),
  });

  if (images.isPending) return <p className="muted">Loading images…</p>;
  if (images.isError) return <ErrorAlert message={errorText(images.error)} />;
  if (images.data.length === 0) return <p className="empty">No images yet. Import one below.</p>;

  return (
    <table className="table">
      <thead>
        <tr>
          <th>Name</th>
          <th>Format</th>
          <th className="num">Size</th>
          <th>SHA-256</th>
          <th>Kernel</th>
          <th>Status</th>
        </tr>
      </thead>
      <tbody>
        {images.data.map((image) => (
          <tr key={image.id} data-testid="image-row" data-image-name={image.name}>
            <td>
              <Link href={`/images/${image.id}`} prefetch={false}>
                {image.name}
              </Link>
            </td>
            <td>{image.format}</td>
            <td className="num">{image.sizeBytes > 0n ? formatBytes(image.sizeBytes) : "—"}</td>
            <td>{image.sha256 ? <code title={image.sha256}>{image.sha256.slice(0, 12)}</code> : <span className="muted">—</span>}</td>
            <td>{image.directBoot ? "yes" : "no"}</td>
            <td>
              <ImageStatus image={image} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
