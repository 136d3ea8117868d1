"use client";
/** The audit log: VM events and audit entries, filtered by stream, VM (deleted ones too), user or action, newest first, in pages. */
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { EventRow, EventTableHead } from "./event-list.tsx";
import { useTRPC } from "./trpc.ts";

export function AuditLog() {
  const trpc = useTRPC();
  const [filter, setFilter] = useState<{ stream?: "vm" | "audit"; vmName?: string; userId?: string; action?: string }>({});
  const users = useQuery(trpc.user.list.queryOptions());
  // Names, not ids: a deleted VM's events keep only its name.
  const vmNames = useQuery(trpc.audit.vmNames.queryOptions());
  const events = useInfiniteQuery(trpc.audit.list.infiniteQueryOptions({ ...filter, limit: 50 }, { getNextPageParam: (page) => page.nextCursor }));
  const set = (key: keyof typeof filter, value: string) => setFilter((f) => ({ ...f, [key]: value || undefined }));

  return (
    <div className="stack">
      <div className="card grid">
        <label className="field">
          <span>Stream</span>
          <select
            value={filter.stream ?? ""}
            onChange={(e) => setFilter((f) => ({ ...f, stream: e.target.value === "vm" || e.target.value === "audit" ? e.target.value : undefined }))}
          >
            <option value="">all</option>
            <option value="vm">VM events</option>
            <option value="audit">sign-ins, users and tokens</option>
          </select>
        </label>
        <label className="field">
          <span>VM</span>
          <select value={filter.vmName ?? ""} onChange={(e) => set("vmName", e.target.value)}>
            <option value="">all</option>
            {vmNames.data?.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>User</span>
          <select value={filter.userId ?? ""} onChange={(e) => set("userId", e.target.value)}>
            <option value="">all</option>
            {users.data?.map((user) => (
              <option key={user.id} value={user.id}>
                {user.email}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Action</span>
          <input value={filter.action ?? ""} onChange={(e) => set("action", e.target.value)} placeholder="start, sign-in, token-create…" />
        </label>
      </div>
      {events.isError ? <ErrorAlert message={errorText(events.error)} /> : null}
      {/* Seven columns are wider than a phone: they scroll here rather than widening the page. */}
      <div className="table-wide">
        <table className="table compact" data-testid="audit-log">
          <EventTableHead target />
          <tbody>{events.data?.pages.flatMap((page) => page.events.map((event) => <EventRow key={event.id} event={event} target />))}</tbody>
        </table>
      </div>
      {events.hasNextPage ? (
        <button type="button" onClick={() => void events.fetchNextPage()} disabled={events.isFetchingNextPage}>
          Older events
        </button>
      ) : null}
    </div>
  );
}
