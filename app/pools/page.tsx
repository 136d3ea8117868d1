import type { Metadata } from "next";
import { PoolsPanel } from "@/components/pools-panel.tsx";

export const metadata: Metadata = { title: "Pools" };

export default function PoolsPage() {
  return (
    <div className="stack">
      <div>
        <h1>Warm pools</h1>
        <p className="muted lead">
          Each pool keeps VMs of one spec ready in its staging state. Acquire hands one out and the pool makes its replacement; Release stops and deletes the
          VM.
        </p>
      </div>
      <PoolsPanel />
    </div>
  );
}
