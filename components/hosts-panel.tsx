"use client";
/**
 * Every host: online or offline by its heartbeat's age, in maintenance or not (admins evacuate
 * and restore), its VMs, and capacity bars for CPU, memory and the state directory's disk.
 * Read again at each sample (metrics.onUsage).
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatBytes } from "./format.ts";
import { HostMaintenance } from "./host-maintenance.tsx";
import { useMe } from "./session.tsx";
import { useTRPC } from "./trpc.ts";
import { useNow } from "./use-now.ts";

/** One bar: `used` in the dark part, `allocated` (if given) in the light part behind it. */
function Bar({ label, used, allocated, total, text }: { label: string; used: number | null; allocated?: number; total: number; text: string }) {
  const share = (value: number) => `${Math.min(100, total > 0 ? (value / total) * 100 : 0)}%`;
  const full = (allocated ?? used ?? 0) > total;
  return (
    <>
      <span>{label}</span>
      <span
        className={`bar${full ? " full" : ""}`}
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={allocated ?? used ?? 0}
      >
        {allocated !== undefined ? <span className="allocated" style={{ width: share(allocated) }} /> : null}
        {used !== null ? <span style={{ width: share(used) }} /> : null}
      </span>
      <span>{text}</span>
    </>
  );
}

export function HostsPanel() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const hosts = useQuery(trpc.metrics.hosts.queryOptions());
  const now = useNow(1000);
  const admin = useMe()?.role === "admin";
  useSubscription(trpc.metrics.onUsage.subscriptionOptions(undefined, { onData: () => void queryClient.invalidateQueries(trpc.metrics.hosts.queryFilter()) }));

  if (hosts.isPending) return <p className="muted">Loading hosts…</p>;
  if (hosts.isError) return <ErrorAlert message={errorText(hosts.error)} />;
  if (hosts.data.length === 0) return <p className="empty">No host has registered yet.</p>;

  return (
    <div className="stack">
      {hosts.data.map((host) => {
        const age = Math.max(0, Math.round((now - host.heartbeatAt.getTime()) / 1000));
        const u = host.usage;
        return (
          <section key={host.id} className="card" data-testid="host-card" data-host-name={host.name}>
            <div className="page-head">
              <h2>
                {host.name} {host.self ? <span className="muted">(this host)</span> : null}
              </h2>
              <span>
                {host.maintenanceSince ? (
                  <span className="badge badge-busy" data-testid="host-maintenance" title={`since ${host.maintenanceSince.toLocaleString()}`}>
                    maintenance
                  </span>
                ) : null}{" "}
                <span className={host.online ? "host-online" : "host-offline"} data-testid="host-status">
                  {host.online ? "online" : "offline"}
                </span>
              </span>
            </div>
            <p className="muted">
              Heartbeat {age} s ago · {host.vmCount} VM{host.vmCount === 1 ? "" : "s"} · accelerator {host.accelerator}
              {host.qemuVersion ? ` · qemu ${host.qemuVersion}` : ""}
              {host.bridges.length > 0 ? ` · bridges ${host.bridges.join(", ")}` : ""}
            </p>
            {host.maintenanceSince ? <p className="muted">In maintenance: no new VM goes to this host until an admin restores it.</p> : null}
            {admin && hosts.data.length > 1 ? <HostMaintenance host={host} /> : null}
            {u ? (
              <div className="capacity">
                <Bar
                  label="CPU"
                  used={u.cpuPercent === null ? null : (u.cpuPercent / 100) * u.cpus}
                  allocated={u.vcpusAllocated}
                  total={u.cpus}
                  // The busy share needs two heartbeats' samples; until then it is left out.
                  text={`${u.vcpusAllocated} vCPUs allocated of ${u.cpus}${u.cpuPercent === null ? "" : `; ${u.cpuPercent.toFixed(0)} % busy`}`}
                />
                <Bar
                  label="Memory"
                  used={u.memTotalBytes - u.memAvailableBytes}
                  allocated={u.memAllocatedBytes}
                  total={u.memTotalBytes}
                  text={`${formatBytes(u.memAllocatedBytes)} allocated, ${formatBytes(u.memTotalBytes - u.memAvailableBytes)} used of ${formatBytes(u.memTotalBytes)}`}
                />
                <Bar
                  label="Disk (state dir)"
                  used={u.diskTotalBytes - u.diskFreeBytes}
                  total={u.diskTotalBytes}
                  text={`${formatBytes(u.diskFreeBytes)} free of ${formatBytes(u.diskTotalBytes)}`}
                />
              </div>
            ) : (
              <p className="muted">No usage figures from this host yet.</p>
            )}
          </section>
        );
      })}
    </div>
  );
}
