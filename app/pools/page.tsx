import type { Metadata } from "next";
import { PoolsPanel } from "@/components/pools-panel.tsx";

export const metadata: Metadata = { title: "Pools" };

export default function PoolsPage() {
  return (
    <>
      <h1>Warm pools</h1>
      <PoolsPanel />
    </>
  );
}
