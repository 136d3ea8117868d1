"use client";
/**
 * The VM page: properties, usage graphs, actions, port forwards, event history and the serial tail.
 * Kept fresh by the live stream (LiveUpdates); after Delete it goes back to the list.
 */
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { AddMyKeys } from "./add-my-keys.tsx";
import { AutostartToggle } from "./autostart-toggle.tsx";
import { CloneForm } from "./clone-form.tsx";
import { CopyCommand } from "./copy-command.tsx";
import { DescriptionForm } from "./description-form.tsx";
import { HostCard } from "./host-card.tsx";
import { ProtectionToggle } from "./protection-toggle.tsx";
import { TagChips } from "./tag-chips.tsx";
import { TagsForm } from "./tags-form.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { EventList } from "./event-list.tsx";
import { GuestAddresses } from "./guest-addresses.tsx";
import { DiskResizeForm } from "./disk-resize-form.tsx";
import { formatBytes, formatMemory, formatTime } from "./format.ts";
import { OwnerSelect } from "./owner-select.tsx";
import { PortForwardsTable } from "./port-forwards-table.tsx";
import { PublishForm } from "./publish-form.tsx";
import { RenameForm } from "./rename-form.tsx";
import { ResourcesForm } from "./resources-form.tsx";
import { SerialTail } from "./serial-tail.tsx";
import { canControl } from "../lib/vocabulary.ts";
import { useMe, type Me } from "./session.tsx";
import { SnapshotList } from "./snapshot-list.tsx";
import { TerminalTabs } from "./terminal/terminal-tabs.tsx";
import { HostOfflineBadge, StateBadge } from "./state-badge.tsx";
import { useTRPC } from "./trpc.ts";
import { VmActions } from "./vm-actions.tsx";
import { VmGraphs } from "./vm-graphs.tsx";

export function VmDetails({ id }: { id: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const query = useQuery(trpc.vm.get.queryOptions({ id }));
  const me = useMe();
  const name = query.data?.name;
  // The route's metadata knows only the id: name the tab after the VM once it is read, so
  // several VM pages open side by side can be told apart.
  useEffect(() => {
    if (name) document.title = `${name} · Hangar`;
  }, [name]);

  if (query.isPending) return <p className="muted">Loading VM…</p>;
  if (query.isError) {
    return (
      <>
        <ErrorAlert message={errorText(query.error)} />
        <p>
          <Link href="/">Back to all VMs</Link>
        </p>
      </>
    );
  }
  const vm = query.data;

  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link href="/">VMs</Link> /
          </p>
          <h1>
            {vm.name} <StateBadge state={vm.state} /> {vm.hostOffline ? <HostOfflineBadge host={vm.host?.name} /> : null}
          </h1>
        </div>
        <VmActions vm={vm} onDeleted={() => router.push("/")} />
      </div>
      {me && !canControl(me, vm) ? <WatchOnly me={me} owner={vm.owner?.email ?? null} /> : null}

      <section className="card">
        <h2>Properties</h2>
        <dl className="props">
          {vm.description ? (
            <>
              <dt>Description</dt>
              <dd className="description" data-testid="vm-description">
                {vm.description}
              </dd>
            </>
          ) : null}
          {vm.tags.length > 0 ? (
            <>
              <dt>Tags</dt>
              <dd>
                <TagChips tags={vm.tags} />
              </dd>
            </>
          ) : null}
          <dt>State</dt>
          <dd>{vm.state}</dd>
          <dt>Image</dt>
          <dd>{vm.image.name}</dd>
          <dt>Owner</dt>
          <dd data-testid="vm-owner">
            <OwnerSelect vmId={vm.id} owner={vm.owner} disabled={vm.poolId !== null && !vm.acquiredAt} />
          </dd>
          {vm.cdromImage ? (
            <>
              <dt>CD-ROM</dt>
              <dd>{vm.cdromImage.name}</dd>
            </>
          ) : null}
          <dt>CPUs</dt>
          <dd>{vm.cpus}</dd>
          <dt>Memory</dt>
          <dd>{formatMemory(vm.memoryMiB)}</dd>
          <dt>Disk</dt>
          <dd data-testid="vm-disk">{vm.disk ? `${formatBytes(vm.disk.virtualBytes)} (${formatBytes(vm.disk.actualBytes)} used on the host)` : "—"}</dd>
          {vm.lastStop ? (
            <>
              <dt>Last stop</dt>
              <dd data-testid="vm-last-stop" className={vm.lastStop.message.startsWith("Forced") ? "warn" : undefined}>
                {vm.lastStop.message} ({formatTime(vm.lastStop.createdAt)})
              </dd>
            </>
          ) : null}
          <dt>At boot</dt>
          <dd data-testid="vm-autostart">
            <AutostartToggle
              vmId={vm.id}
              autostart={vm.autostart}
              order={vm.autostartOrder}
              delaySec={vm.autostartDelaySec}
              disabled={!canControl(me, vm) || (vm.poolId !== null && !vm.acquiredAt)}
            />
          </dd>
          <dt>Protection</dt>
          <dd data-testid="vm-protection">
            <ProtectionToggle vmId={vm.id} protection={vm.protection} disabled={!canControl(me, vm) || (vm.poolId !== null && !vm.acquiredAt)} />
          </dd>
          <dt>Network</dt>
          <dd data-testid="vm-network">{vm.network === "bridge" ? `bridge (${vm.bridge ?? "?"})` : vm.network}</dd>
          <dt>Addresses</dt>
          <dd data-testid="vm-addresses">
            <GuestAddresses vmId={vm.id} running={vm.state === "Running"} hostOffline={vm.hostOffline} />
          </dd>
          <dt>Ready</dt>
          <dd data-testid="vm-ready">
            <ReadyCondition state={vm.readyState} detail={vm.readyDetail} at={vm.readyAt} />
          </dd>
          <dt>SSH port</dt>
          <dd data-testid="vm-ssh-port">{vm.state === "Running" ? (vm.sshPort ?? "—") : "—"}</dd>
          <dt>PID</dt>
          <dd>{vm.pid ?? "—"}</dd>
          <dt>Created</dt>
          <dd>{formatTime(vm.createdAt)}</dd>
          <dt>ID</dt>
          <dd>
            <code>{vm.id}</code>
          </dd>
          {vm.error ? (
            <>
              <dt>Error</dt>
              <dd className="bad">{vm.error}</dd>
            </>
          ) : null}
        </dl>
        {/* Through Hangar with the person's own key (Account page), from any machine that reaches Hangar;
            its SSH tunnel is only for those who control the VM, so nobody else is shown a command that is refused. */}
        {canControl(me, vm) ? <CopyCommand label="SSH command" command={`hangar ssh ${vm.name}`} /> : null}
        {canControl(me, vm) && vm.state === "Running" ? <AddMyKeys vmId={vm.id} /> : null}
      </section>

      <VmGraphs id={vm.id} running={vm.state === "Running"} />

      <section className="card">
        <h2>Terminal</h2>
        <TerminalTabs vm={vm} />
      </section>

      {/* CPUs and memory change while Stopped, for the next start; the disk grows while Running too.
          A pool gives the members waiting in it their CPUs and memory. */}
      {canControl(me, vm) && (vm.state === "Stopped" || vm.state === "Running") && (!vm.poolId || vm.acquiredAt) ? (
        <section className="card" aria-labelledby="vm-hardware-title">
          <h2 id="vm-hardware-title">{vm.state === "Stopped" ? "CPUs, memory and disk" : "Disk"}</h2>
          {vm.state === "Stopped" ? <ResourcesForm key={`${vm.cpus}-${vm.memoryMiB}`} vmId={vm.id} cpus={vm.cpus} memoryMiB={vm.memoryMiB} /> : null}
          {vm.disk ? <DiskResizeForm key={vm.disk.virtualBytes} vmId={vm.id} currentGiB={vm.disk.virtualBytes / 1024 ** 3} /> : null}
        </section>
      ) : null}

      {canControl(me, vm) && (!vm.poolId || vm.acquiredAt) ? (
        <section className="card" aria-labelledby="vm-rename-title">
          <h2 id="vm-rename-title">Name, description and tags</h2>
          <RenameForm key={vm.name} vmId={vm.id} vmName={vm.name} />
          <DescriptionForm key={`description:${vm.description}`} vmId={vm.id} description={vm.description} />
          <TagsForm key={`tags:${vm.tags.join(" ")}`} vmId={vm.id} tags={vm.tags} />
        </section>
      ) : null}

      {me?.role === "admin" && vm.state === "Stopped" ? (
        <section className="card" aria-labelledby="vm-publish-title">
          <h2 id="vm-publish-title">Image</h2>
          <PublishForm key={vm.name} vmId={vm.id} vmName={vm.name} />
        </section>
      ) : null}

      {canControl(me, vm) && vm.state === "Stopped" ? (
        <section className="card" aria-labelledby="vm-clone-title">
          <h2 id="vm-clone-title">Clone</h2>
          <CloneForm vmId={vm.id} vmName={vm.name} />
        </section>
      ) : null}

      {canControl(me, vm) && (vm.state === "Stopped" || vm.state === "Suspended") && (!vm.poolId || vm.acquiredAt) ? (
        <HostCard vmId={vm.id} host={vm.host} suspended={vm.state === "Suspended"} />
      ) : null}

      <section className="card" aria-labelledby="vm-snapshots-title">
        <h2 id="vm-snapshots-title">Snapshots</h2>
        <SnapshotList vmId={vm.id} state={vm.state} canChange={canControl(me, vm)} />
      </section>

      <section className="card">
        <h2>Port forwards</h2>
        <PortForwardsTable vm={vm} canChange={canControl(me, vm)} />
      </section>

      <section className="card">
        <h2>Events</h2>
        <EventList vmId={vm.id} />
      </section>

      <section className="card">
        <div className="section-head">
          <h2>Serial console (last lines)</h2>
          <button type="button" className="secondary small" onClick={() => void query.refetch()} disabled={query.isFetching}>
            Refresh
          </button>
        </div>
        <SerialTail vm={vm} readAt={query.dataUpdatedAt} />
      </section>
    </div>
  );
}

/**
 * Why the page offers this person no actions and no forms: the server would refuse them, so
 * the page says who may change the VM rather than leave them looking for the buttons.
 */
function WatchOnly({ me, owner }: { me: Me; owner: string | null }) {
  const may = owner ? `its owner ${owner} and admins` : "admins";
  return (
    <p className="notice" data-testid="vm-watch-only">
      {me.role === "viewer" ? "You are signed in as a viewer: you" : "You"} can watch this VM; only {may} can change it.
    </p>
  );
}

/** The ready condition: cloud-init's result once it finished, "booting" until then. */
function ReadyCondition({ state, detail, at }: { state: string | null; detail: string | null; at: Date | null }) {
  switch (state) {
    case "ready":
      return (
        <span className="ok">
          Ready{detail ? ` — ${detail}` : ""}
          {at ? <span className="muted"> (since {formatTime(at)})</span> : null}
        </span>
      );
    case "error":
      return <span className="bad">Not ready — {detail ?? "cloud-init failed"}</span>;
    case "booting":
      return <span className="muted">Booting — {detail ?? "waiting for SSH and cloud-init"}</span>;
    default:
      return <span className="muted">— (not running)</span>;
  }
}
