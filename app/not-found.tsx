import type { Metadata } from "next";
import Link from "next/link";

export const metadata: Metadata = { title: "Not found" };

export default function NotFound() {
  return (
    <div className="stack">
      <h1>Not found</h1>
      <p>
        There is nothing here. <Link href="/">Back to all VMs</Link>
      </p>
    </div>
  );
}
