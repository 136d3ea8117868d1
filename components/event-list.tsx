"use client";
/** A VM's event history, newest first: time, actor, action, from → to, ok, message. */
import { useQuery } from "@tanstack/react-query";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatTime } from "./format.ts";
import { useTRPC, type VmEvent } from "./trpc.ts";

export function EventList({ vmId, limit = 50 }: { vmId: string; limit?: number }) {
  const trpc = useTRPC();
  const events = useQuery(trpc.vm.events.queryOptions({ vmId, limit }));

  if (events.isPending) return <p className="muted">Loading events…</p>;
  if (events.isError) return <ErrorAlert message={errorText(events.error)} />;
  if (events.data.events.length === 0) return <p className="empty">No events yet.</p>;

  return (
    <table className="table compact" data-testid="event-list">
      <EventTableHead />
      <tbody>
        {events.data.events.map((event) => (
          <EventRow key={event.id} event={event} />
        ))}
      </tbody>
    </table>
  );
}

/** One event as a table row; `target` adds the column the audit log shows. */
export function EventRow({ event, target = false }: { event: VmEvent; target?: boolean }) {
  return (
    <tr data-testid="event-row" className={event.ok ? undefined : "failed"}>
      <td className="nowrap">{formatTime(event.createdAt)}</td>
      <td>{event.actor}</td>
      <td data-testid="event-action">{event.action}</td>
      {target ? <td>{event.vmName || event.target || "—"}</td> : null}
      {/* Sign-ins and account changes have no state: the cell stays empty rather than "— → —". */}
      <td className="nowrap">{event.fromState || event.toState ? `${event.fromState ?? "—"} → ${event.toState ?? "—"}` : ""}</td>
      <td>{event.ok ? <span className="ok">yes</span> : <span className="bad">no</span>}</td>
      <td className="message">{event.message}</td>
    </tr>
  );
}

/** The header matching EventRow; `target` adds the audit log's column. */
export function EventTableHead({ target = false }: { target?: boolean }) {
  return (
    <thead>
      <tr>
        <th>Time</th>
        <th>Actor</th>
        <th>Action</th>
        {target ? <th>Target</th> : null}
        <th>State</th>
        <th>OK</th>
        <th>Message</th>
      </tr>
    </thead>
  );
}
