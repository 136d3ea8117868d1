"use client";
/**
 * The last lines of the VM's serial console, as plain text (never HTML). vm.get brings them
 * with the VM; while the guest runs they are reread every few seconds, so a boot or a
 * program's output shows as it prints, as in the Console tab but without opening it.
 */
import { useEffect, useRef } from "react";
import { useQuery } from "@tanstack/react-query";
import { guestRuns } from "../lib/vocabulary.ts";
import { lastLines, plainText } from "./format.ts";
import { useTRPC } from "./trpc.ts";

const REREAD_MS = 3_000;

export function SerialTail({ vm, readAt, lines = 60 }: { vm: { id: string; state: string; serialTail: string }; readAt: number; lines?: number }) {
  const trpc = useTRPC();
  const live = guestRuns(vm.state);
  const query = useQuery(trpc.vm.serialTail.queryOptions({ id: vm.id }, { enabled: live, refetchInterval: live ? REREAD_MS : false }));
  // Whichever read is newer: this reread, or the VM's own (after a change or Refresh).
  const text = query.data && query.dataUpdatedAt > readAt ? query.data.text : vm.serialTail;
  const pre = useRef<HTMLPreElement>(null);
  // Kept at the newest line unless the reader has scrolled up to read an earlier one.
  const following = useRef(true);
  const shown = lastLines(plainText(text).replace(/\n+$/, ""), lines);
  useEffect(() => {
    if (pre.current && following.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [shown]);
  if (!shown.trim()) return <p className="empty">The serial console has printed nothing yet.</p>;
  return (
    <pre
      className="serial"
      ref={pre}
      data-testid="serial-tail"
      onScroll={(event) => {
        const box = event.currentTarget;
        following.current = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
      }}
    >
      {shown}
    </pre>
  );
}
