"use client";
/**
 * A running VM's addresses as its guest agent reports them, one line per interface: what a
 * VM on a bridge is reached at on the LAN. Read when the page opens, then every half minute
 * (a DHCP lease can change); a guest without an agent says so. Its host asks the agent: while
 * that host is offline nothing is asked.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "./trpc.ts";

const REREAD_MS = 30_000;

export function GuestAddresses({ vmId, running, hostOffline }: { vmId: string; running: boolean; hostOffline: boolean }) {
  const trpc = useTRPC();
  const asked = running && !hostOffline;
  const query = useQuery(trpc.vm.addresses.queryOptions({ id: vmId }, { enabled: asked, refetchInterval: asked ? REREAD_MS : false }));
  if (!running) return <>—</>;
  if (hostOffline) return <span className="muted">Not known while its host is offline.</span>;
  if (query.isPending) return <span className="muted">asking the guest…</span>;
  if (query.isError || !query.data.interfaces) return <span className="muted">{query.data?.detail ?? "The guest did not answer."}</span>;
  const shown = query.data.interfaces.filter((nic) => nic.addresses.length > 0);
  if (shown.length === 0) return <span className="muted">The guest reports no address yet.</span>;
  return (
    <ul className="plain">
      {shown.map((nic) => (
        <li key={nic.name}>
          {nic.name}: {nic.addresses.map((ip) => `${ip.address}/${ip.prefix}`).join(", ")}
        </li>
      ))}
    </ul>
  );
}
