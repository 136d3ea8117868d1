import type { Metadata } from "next";
import { HostsPanel } from "@/components/hosts-panel.tsx";

export const metadata: Metadata = { title: "Hosts" };

export default function HostsPage() {
  return (
    <div className="stack">
      <div>
        <h1>Hosts</h1>
        <p className="muted lead">
          Each Hangar host with its heartbeat and capacity: what its VMs are allocated and what is in use, against what the host has.
        </p>
      </div>
      <HostsPanel />
    </div>
  );
}
