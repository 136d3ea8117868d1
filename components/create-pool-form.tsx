"use client";
/**
 * Create a warm pool (admins): name, image (hangar-tiny by default), CPUs, memory, size
 * and the staging state its members wait in. The server validates; its sentence is shown.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { STAGING_STATES, type StagingState, VM_NAME_PATTERN, VM_NAME_RULE, defaultImage } from "../lib/vocabulary.ts";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { useTRPC } from "./trpc.ts";
import { CpuMemoryFields } from "./vm-fields.tsx";

export function CreatePoolForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const images = useQuery(trpc.image.list.queryOptions());
  const [name, setName] = useState("");
  const [imageId, setImageId] = useState("");
  const [cpus, setCpus] = useState("1");
  const [memory, setMemory] = useState("256");
  const [size, setSize] = useState("2");
  const [staging, setStaging] = useState<StagingState>("Suspended");
  const [error, setError] = useState<string>();

  const ready = images.data?.filter((image) => image.status === "ready") ?? [];
  const selected = imageId || defaultImage(ready)?.id || "";

  const create = useMutation(
    trpc.pool.create.mutationOptions({
      onMutate: () => setError(undefined),
      onError: (e) => setError(errorText(e)),
      onSuccess: (pool) => setName((current) => (current.trim() === pool.name ? "" : current)),
      onSettled: () => queryClient.invalidateQueries(trpc.pool.pathFilter()),
    }),
  );

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    create.mutate({ name: name.trim(), imageId: selected, cpus: Number(cpus), memoryMiB: Number(memory), size: Number(size), staging });
  }

  return (
    <form onInvalidCapture={() => setError(undefined)} className="card form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New pool</h2>
      <div className="grid">
        <label className="field">
          <span>Pool name</span>
          <input
            name="name"
            required
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="ci-runners"
            pattern={VM_NAME_PATTERN}
            title={`A DNS label: ${VM_NAME_RULE}.`}
            maxLength={63}
          />
        </label>
        <div className="field">
          <label htmlFor={`${id}-image`}>Image</label>
          <select id={`${id}-image`} name="imageId" value={selected} onChange={(e) => setImageId(e.target.value)} required>
            {ready.length === 0 ? <option value="">{images.isPending ? "Loading…" : "No ready image"}</option> : null}
            {ready.map((image) => (
              <option key={image.id} value={image.id}>
                {image.name}
              </option>
            ))}
          </select>
        </div>
        <CpuMemoryFields cpus={cpus} memory={memory} onCpus={setCpus} onMemory={setMemory} />
        <label className="field">
          <span>Pool size</span>
          <input name="size" type="number" min={0} max={32} required value={size} onChange={(e) => setSize(e.target.value)} />
        </label>
        <div className="field">
          <label htmlFor={`${id}-staging`}>Staging state</label>
          <select
            id={`${id}-staging`}
            name="staging"
            value={staging}
            onChange={(e) => setStaging(STAGING_STATES.find((state) => state === e.target.value) ?? "Suspended")}
          >
            {STAGING_STATES.map((state) => (
              <option key={state}>{state}</option>
            ))}
          </select>
        </div>
      </div>
      <p className="muted small">
        Running members are instant but use their memory all the time; Paused ones are as quick and hold their memory but use no CPU; Suspended ones keep their
        memory on disk and resume in a fraction of a second; Stopped ones cost nothing while they wait but boot on Acquire.
      </p>
      <ErrorAlert message={error} onDismiss={() => setError(undefined)} />
      <div className="buttons">
        <button type="submit" className="primary" disabled={create.isPending}>
          Create pool
        </button>
      </div>
    </form>
  );
}
