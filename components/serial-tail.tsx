"use client";
/** The last lines of the VM's serial console, as plain text (never HTML). */
import { useEffect, useRef } from "react";
import { lastLines, plainText } from "./format.ts";

export function SerialTail({ text, lines = 60 }: { text: string; lines?: number }) {
  const pre = useRef<HTMLPreElement>(null);
  const shown = lastLines(plainText(text).replace(/\n+$/, ""), lines);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [shown]);
  if (!shown.trim()) return <p className="empty">The serial console has printed nothing yet.</p>;
  return (
    <pre className="serial" ref={pre} data-testid="serial-tail">
      {shown}
    </pre>
  );
}
