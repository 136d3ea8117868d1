"use client";
/**
 * Create a VM: name, image (hangar-tiny by default), an optional ISO in the CD-ROM drive,
 * CPUs, memory, optional cloud-init user-data and port forwards. The server validates; its sentence is shown as an alert.
 * Shown in the "New VM" dialog; `onCreated` hears the new VM's name and, when "Start it
 * now" was ticked (Proxmox's "Start after created"), how its start went.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { TAG_RULE, VM_NAME_PATTERN, VM_NAME_RULE, defaultImage, splitTags } from "../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";
import { CpuMemoryFields } from "./vm-fields.tsx";

interface PortRow {
  key: number;
  hostPort: string;
  guestPort: string;
}

export function CreateVmForm({ onCreated, onCancel }: { onCreated: (name: string, started?: string) => void; onCancel: () => void }) {
  const trpc = useTRPC();
  const images = useQuery(trpc.image.list.queryOptions());
  const hosts = useQuery(trpc.host.list.queryOptions());
  // The bridges some online host out of maintenance opens to VMs (HANGAR_BRIDGES): the only ones a new VM may join.
  const bridges = [...new Set((hosts.data ?? []).filter((h) => h.online && h.maintenanceSince === null).flatMap((h) => h.bridges))].sort();
  const id = useId();
  const [name, setName] = useState("");
  const [imageId, setImageId] = useState("");
  const [cdromImageId, setCdromImageId] = useState("");
  const [cpus, setCpus] = useState("1");
  const [memory, setMemory] = useState("256");
  const [userData, setUserData] = useState("");
  const [network, setNetwork] = useState<"nat" | "isolated" | "bridge">("nat");
  const [diskGiB, setDiskGiB] = useState("");
  const [bridge, setBridge] = useState("");
  const [ports, setPorts] = useState<PortRow[]>([]);
  const [autostart, setAutostart] = useState(false);
  const [startNow, setStartNow] = useState(false);
  const [tags, setTags] = useState("");
  const [nextKey, setNextKey] = useState(1);
  const [error, setError] = useState<string>();

  const ready = images.data?.filter((image) => image.status === "ready") ?? [];
  const fallback = defaultImage(ready);
  const selected = imageId || fallback?.id || "";
  // ISOs import as raw images; the server checks the rest.
  const isos = ready.filter((image) => image.format === "raw");

  const start = useMutation(trpc.vm.start.mutationOptions());
  const create = useMutation(
    trpc.vm.create.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      // The new row reaches the inventory through the live stream, like every other change.
      // The VM exists whatever its start does: a refused start is told, not an error of the create.
      onSuccess: async (vm) => {
        if (!startNow) return onCreated(vm.name);
        try {
          await start.mutateAsync({ id: vm.id });
          onCreated(vm.name, "and started it");
        } catch (e) {
          onCreated(vm.name, `but it did not start: ${(errorText(e) ?? "no reason given").replace(/\.$/, "")}`);
        }
      },
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    create.mutate({
      name: name.trim(),
      imageId: selected,
      ...(cdromImageId ? { cdromImageId } : {}),
      cpus: Number(cpus),
      memoryMiB: Number(memory),
      ...(userData.trim() ? { userData } : {}),
      network,
      ...(network === "bridge" ? { bridge: bridge || bridges[0] || "" } : {}),
      ...(diskGiB.trim() ? { diskGiB: Number(diskGiB) } : {}),
      ...(autostart ? { autostart } : {}),
      ...(splitTags(tags).length > 0 ? { tags: splitTags(tags) } : {}),
      ...(ports.length > 0 ? { ports: ports.map((p) => ({ hostPort: Number(p.hostPort || 0), guestPort: Number(p.guestPort) })) } : {}),
    });
  }

  function updatePort(key: number, change: Partial<PortRow>) {
    setPorts((rows) => rows.map((row) => (row.key === key ? { ...row, ...change } : row)));
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New VM</h2>
      <div className="grid">
        <div className="field">
          <label htmlFor={`${id}-name`}>Name</label>
          <input
            id={`${id}-name`}
            name="name"
            autoFocus
            value={name}
            onChange={(e) => setName(e.target.value)}
            required
            autoComplete="off"
            spellCheck={false}
            placeholder="web-1"
            pattern={VM_NAME_PATTERN}
            title={`A DNS label: ${VM_NAME_RULE}.`}
            maxLength={63}
          />
          <span className="muted small">Lowercase letters, digits and hyphens; it becomes the guest&apos;s hostname.</span>
        </div>
        <div className="field">
          <label htmlFor={`${id}-image`}>Image</label>
          <select id={`${id}-image`} name="image" value={selected} onChange={(e) => setImageId(e.target.value)} required>
            {images.isPending ? <option value="">Loading…</option> : null}
            {!images.isPending && ready.length === 0 ? <option value="">No ready image</option> : null}
            {ready.map((image) => (
              <option key={image.id} value={image.id}>
                {image.name}
              </option>
            ))}
          </select>
        </div>
        {isos.length > 0 ? (
          <div className="field">
            <label htmlFor={`${id}-cdrom`}>CD-ROM</label>
            <select id={`${id}-cdrom`} name="cdrom" value={cdromImageId} onChange={(e) => setCdromImageId(e.target.value)}>
              <option value="">None</option>
              {isos.map((image) => (
                <option key={image.id} value={image.id}>
                  {image.name}
                </option>
              ))}
            </select>
          </div>
        ) : null}
      </div>
      <div className="grid">
        <CpuMemoryFields cpus={cpus} memory={memory} onCpus={setCpus} onMemory={setMemory} />
        <div className="field">
          <label htmlFor={`${id}-disk`}>Disk (GiB)</label>
          <input
            id={`${id}-disk`}
            name="diskGiB"
            type="number"
            min={1}
            max={4096}
            step={1}
            value={diskGiB}
            onChange={(e) => setDiskGiB(e.target.value)}
            placeholder="the image's size"
          />
        </div>
      </div>
      <div className="grid">
        <div className="field">
          <label htmlFor={`${id}-network`}>Network</label>
          <select
            id={`${id}-network`}
            name="network"
            value={network}
            onChange={(e) => setNetwork(e.target.value === "isolated" || e.target.value === "bridge" ? e.target.value : "nat")}
          >
            <option value="nat">nat: outbound with DNS</option>
            <option value="isolated">isolated: no way out</option>
            <option value="bridge" disabled={bridges.length === 0}>
              {bridges.length === 0 ? "bridge: no host bridge is open to VMs" : "bridge: on a host bridge"}
            </option>
          </select>
        </div>
        {network === "bridge" ? (
          <div className="field">
            <label htmlFor={`${id}-bridge`}>Host bridge</label>
            <select id={`${id}-bridge`} name="bridge" value={bridge || bridges[0] || ""} onChange={(e) => setBridge(e.target.value)}>
              {bridges.map((b) => (
                <option key={b} value={b}>
                  {b}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        <div className="field">
          <label htmlFor={`${id}-tags`}>Tags</label>
          <input
            id={`${id}-tags`}
            name="tags"
            value={tags}
            onChange={(e) => setTags(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            placeholder="web team-a (optional)"
            title={`Separated by spaces; each ${TAG_RULE}`}
          />
        </div>
      </div>
      <div className="field">
        <label htmlFor={`${id}-userdata`}>User data</label>
        <textarea
          id={`${id}-userdata`}
          name="userData"
          rows={3}
          value={userData}
          onChange={(e) => setUserData(e.target.value)}
          placeholder={"#cloud-config (optional)"}
          spellCheck={false}
        />
      </div>
      <fieldset className="ports">
        <legend>Port forwards</legend>
        {ports.length === 0 ? <p className="muted small">SSH (guest port 22) is always forwarded.</p> : null}
        {ports.map((row, index) => (
          <div className="port-row" key={row.key}>
            <label className="field inline">
              <span>Host port {index + 1}</span>
              <input
                type="number"
                min={0}
                max={65535}
                value={row.hostPort}
                placeholder="0 = any"
                onChange={(e) => updatePort(row.key, { hostPort: e.target.value })}
              />
            </label>
            <span aria-hidden="true">→</span>
            <label className="field inline">
              <span>Guest port {index + 1}</span>
              <input type="number" min={1} max={65535} required value={row.guestPort} onChange={(e) => updatePort(row.key, { guestPort: e.target.value })} />
            </label>
            <button type="button" className="link-button" onClick={() => setPorts((rows) => rows.filter((r) => r.key !== row.key))}>
              Remove
            </button>
          </div>
        ))}
        <button
          type="button"
          className="secondary small"
          onClick={() => {
            setPorts((rows) => [...rows, { key: nextKey, hostPort: "", guestPort: "" }]);
            setNextKey((k) => k + 1);
          }}
        >
          Add port forward
        </button>
      </fieldset>
      <label className="check">
        <input type="checkbox" name="start" checked={startNow} onChange={(e) => setStartNow(e.target.checked)} />
        Start it now
      </label>
      <label className="check">
        <input type="checkbox" name="autostart" checked={autostart} onChange={(e) => setAutostart(e.target.checked)} />
        Start it when its host boots
      </label>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <div className="buttons">
        <button type="submit" className="primary" disabled={create.isPending || !selected}>
          {start.isPending ? "Starting…" : create.isPending ? "Creating…" : "Create VM"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
