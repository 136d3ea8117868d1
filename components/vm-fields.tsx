"use client";
/**
 * Inputs several VM forms share, with the browser's checks taken from the vocabulary the
 * server validates with: a VM's CPUs and memory (create, resize, pools), and a DNS-label
 * name (clone, rename, images made from a VM).
 */
import { useId } from "react";
import { VM_LIMITS, VM_NAME_PATTERN, VM_NAME_RULE } from "../lib/vocabulary.ts";

export function CpuMemoryFields({
  cpus,
  memory,
  onCpus,
  onMemory,
}: {
  cpus: string;
  memory: string;
  onCpus: (value: string) => void;
  onMemory: (value: string) => void;
}) {
  const id = useId();
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-cpus`}>CPUs</label>
        <input
          id={`${id}-cpus`}
          name="cpus"
          type="number"
          min={VM_LIMITS.cpus.min}
          max={VM_LIMITS.cpus.max}
          step={1}
          value={cpus}
          onChange={(e) => onCpus(e.target.value)}
          required
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-memory`}>Memory (MiB)</label>
        <input
          id={`${id}-memory`}
          name="memoryMiB"
          type="number"
          min={VM_LIMITS.memoryMiB.min}
          max={VM_LIMITS.memoryMiB.max}
          step={1}
          value={memory}
          onChange={(e) => onMemory(e.target.value)}
          required
        />
      </div>
    </>
  );
}

/** A name field (form field `name`) that the browser holds to the DNS-label rule. */
export function VmNameField({ label, defaultValue }: { label: string; defaultValue: string }) {
  return (
    <label className="field grow">
      <span>{label}</span>
      <input name="name" required defaultValue={defaultValue} pattern={VM_NAME_PATTERN} title={`A DNS label: ${VM_NAME_RULE}.`} maxLength={63} />
    </label>
  );
}
