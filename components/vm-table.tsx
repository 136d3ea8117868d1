"use client";
/**
 * The inventory: search, filters and sortable columns over the VM list, with only the rows
 * on screen in the page (TanStack Virtual), so a thousand VMs cost what twenty do. A live
 * change replaces one row object in the cache; rows are memoized on that object, so only the
 * changed row renders again.
 */
import Link from "next/link";
import { useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type Row, type RowSelectionState, type SortingState } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { Age } from "./age.tsx";
import { ErrorAlert, errorText } from "./error-alert.tsx";
import { formatMemory } from "./format.ts";
import { useMe, type Me } from "./session.tsx";
import { HostOfflineBadge, StateBadge } from "./state-badge.tsx";
import { TagChips } from "./tag-chips.tsx";
import { useTRPC, useTRPCClient, type VmRow } from "./trpc.ts";
import { canControl } from "../lib/vocabulary.ts";
import { VmActions } from "./vm-actions.tsx";
import { VmBulkActions } from "./vm-bulk-actions.tsx";
import type { VmListPage } from "./vm-list-patch.ts";
import { DEFAULT_SORT, defaultFilter, isSortKey, listQuery, type SortKey, type VmFilter, type VmSort } from "./vm-filter.ts";
import { VmFilters } from "./vm-filters.tsx";
import { useVmRows } from "./use-vm-rows.ts";

/** A row's height before it is measured (a badge or a line of buttons plus padding). */
const ROW_ESTIMATE = 49;
/** Rows rendered beyond the visible ones, so a quick scroll does not show blanks. */
const OVERSCAN = 10;
/**
 * The table's height before it is measured: the rows the server renders (and the tab's first
 * render, which must equal it), about a screenful.
 */
const FIRST_RENDER_HEIGHT = 800;
/** The next page is asked for when the last rendered row is this close to the end. */
const PREFETCH_ROWS = 20;

const columns: ColumnDef<VmRow>[] = [
  {
    id: "select",
    header: ({ table }) => (
      <input
        type="checkbox"
        aria-label="Select every VM listed"
        disabled={Boolean(table.options.meta?.updating)}
        checked={table.getIsAllRowsSelected()}
        ref={(box) => {
          if (box) box.indeterminate = table.getIsSomeRowsSelected();
        }}
        onChange={table.getToggleAllRowsSelectedHandler()}
      />
    ),
    cell: ({ row }) => (
      <input
        type="checkbox"
        aria-label={`Select ${row.original.name}`}
        checked={row.getIsSelected()}
        disabled={!row.getCanSelect()}
        onChange={row.getToggleSelectedHandler()}
      />
    ),
  },
  {
    id: "name",
    header: "Name",
    // The tags beside the name, as Proxmox shows them: a column of their own would crowd the table.
    cell: ({ row, table }) => (
      <span className="name-cell">
        {/* One link per row: prefetching each route as it scrolls into view would ask the server for every page. */}
        <Link href={`/vms/${row.original.id}`} className="vm-name" prefetch={false} title={row.original.name}>
          {row.original.name}
        </Link>
        <TagChips tags={row.original.tags} onPick={table.options.meta?.filterByTag} />
      </span>
    ),
  },
  {
    id: "state",
    header: "State",
    cell: ({ row }) => (
      <>
        <StateBadge state={row.original.state} />
        {row.original.hostOffline ? (
          <>
            {" "}
            <HostOfflineBadge host={row.original.host?.name} />
          </>
        ) : null}
        {row.original.error ? (
          <span className="error-mark" title={row.original.error}>
            {" "}
            !
          </span>
        ) : null}
      </>
    ),
  },
  { id: "image", header: "Image", cell: ({ row }) => row.original.image.name },
  {
    id: "owner",
    header: "Owner",
    cell: ({ row }) => {
      const vm = row.original;
      if (vm.owner) return vm.owner.email;
      return vm.poolId && !vm.acquiredAt ? (
        <span className="muted" title="Waits in a pool until pool.acquire hands it out; acquire it rather than starting it by hand">
          pool member
        </span>
      ) : (
        "—"
      );
    },
  },
  { id: "host", header: "Host", cell: ({ row }) => row.original.host?.name ?? "—" },
  { id: "cpus", header: "CPUs", meta: { numeric: true }, cell: ({ row }) => row.original.cpus },
  { id: "memoryMiB", header: "Memory", meta: { numeric: true }, cell: ({ row }) => formatMemory(row.original.memoryMiB) },
  {
    id: "cpuUse",
    header: "CPU use",
    meta: { numeric: true },
    cell: ({ row }) => (row.original.usage?.cpuPercent != null ? `${row.original.usage.cpuPercent.toFixed(0)} %` : "—"),
  },
  {
    id: "memoryUse",
    header: () => <span title="What the VM's qemu process holds on the host: the guest memory it has touched, and qemu's own">Host memory</span>,
    meta: { numeric: true },
    cell: ({ row }) => (row.original.usage?.rssMiB != null ? formatMemory(Math.round(row.original.usage.rssMiB)) : "—"),
  },
  {
    id: "sshPort",
    header: "SSH port",
    meta: { numeric: true, testId: "vm-ssh-port" },
    // A stopped VM keeps its port for its next start, but nothing answers on it meanwhile.
    cell: ({ row }) => (row.original.state === "Running" ? (row.original.sshPort ?? "—") : "—"),
  },
  { id: "created", header: "Age", cell: ({ row }) => <Age since={row.original.createdAt} /> },
  { id: "actions", header: "Actions", cell: ({ row }) => <VmActions vm={row.original} /> },
];

declare module "@tanstack/react-table" {
  // The type parameters must match the library's declaration to merge with it.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface ColumnMeta<TData, TValue> {
    numeric?: boolean;
    testId?: string;
  }
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface TableMeta<TData> {
    /** A click on a row's tag: list the VMs with that tag. */
    filterByTag?: (tag: string) => void;
    /** The rows shown are about to be replaced (a search or filter not read yet): nothing to select at once. */
    updating?: boolean;
  }
}

function isUnfiltered(filter: VmFilter): boolean {
  return !filter.search.trim() && !filter.state && filter.owner === "all" && !filter.hostId && !filter.imageId && !filter.poolId && !filter.tag;
}

/**
 * What an empty list says. An operator starts on "My VMs", which they did not pick, so a
 * filter they never set is not blamed; a viewer has no New VM button to be pointed at.
 */
function emptyText(filter: VmFilter, role: Me["role"]): string {
  if (isUnfiltered(filter)) return role === "viewer" ? "No VMs yet." : "No VMs yet. Create one with New VM.";
  if (isUnfiltered({ ...filter, owner: "all" }) && filter.owner === "mine") {
    return "You have no VMs yet. Create one with New VM, or choose Everyone under Owner to see the others' VMs.";
  }
  return "No VM matches the search and filters.";
}

/**
 * Patches each sample's CPU and memory into every cached page of the list (metrics.onUsage).
 * Rows whose figures did not change keep their identity, so they do not render again.
 */
function useLiveUsage() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  useSubscription(
    trpc.metrics.onUsage.subscriptionOptions(undefined, {
      onData: (sample) => {
        const byId = new Map(sample.map((entry) => [entry.id, entry.usage]));
        const patch = (page: VmListPage): VmListPage => {
          let changed = false;
          const items = page.items.map((row) => {
            const usage = byId.get(row.id) ?? null;
            if (usage?.cpuPercent === row.usage?.cpuPercent && usage?.rssMiB === row.usage?.rssMiB) return row;
            changed = true;
            return { ...row, usage };
          });
          return changed ? { ...page, items } : page;
        };
        queryClient.setQueriesData<InfiniteData<VmListPage, unknown>>({ queryKey: trpc.vm.list.infiniteQueryKey() }, (data) =>
          data ? { ...data, pages: data.pages.map(patch) } : data,
        );
      },
    }),
  );
}

export function VmTable() {
  const me = useMe();
  // SessionGate renders pages only once the user is known.
  return me ? <Inventory me={me} /> : null;
}

function Inventory({ me }: { me: Me }) {
  useLiveUsage();
  const [filter, setFilter] = useState<VmFilter>(() => defaultFilter(me.role));
  const [sort, setSort] = useState<VmSort>(DEFAULT_SORT);
  const [rowSelection, setRowSelection] = useState<RowSelectionState>({});
  /** Every VM the filters match, on pages not loaded too (Gmail's "select all that match"); undefined: the ticked rows. */
  const [allMatching, setAllMatching] = useState<VmRow[]>();
  const [readingAll, setReadingAll] = useState(false);
  const client = useTRPCClient();
  const list = useVmRows(filter, sort);
  const [search, setSearch] = useState(filter.search);
  /** Until the list follows what is typed and picked, its rows and count are the previous ones. */
  const updating = search !== filter.search || list.isUpdating;
  // Stable, so memoized rows keep calling the current one.
  const filterByTag = useCallback((tag: string) => {
    setAllMatching(undefined);
    setFilter((current) => ({ ...current, tag }));
  }, []);
  const tableMeta = useMemo(() => ({ filterByTag, updating }), [filterByTag, updating]);
  const sorting = useMemo<SortingState>(() => [{ id: sort.key, desc: sort.desc }], [sort]);
  // Viewers act on no VM: no selection column for them.
  const columnVisibility = useMemo(() => ({ select: me.role !== "viewer" }), [me.role]);
  const table = useReactTable({
    data: list.rows,
    columns,
    getRowId: (vm) => vm.id,
    getCoreRowModel: getCoreRowModel(),
    // The server sorts: the table only shows which column and which way.
    manualSorting: true,
    enableRowSelection: (row) => canControl(me, row.original),
    onRowSelectionChange: setRowSelection,
    meta: tableMeta,
    state: { sorting, rowSelection, columnVisibility },
  });
  /** The selected VMs among those listed. */
  const ticked = useMemo(() => list.rows.filter((vm) => rowSelection[vm.id]), [list.rows, rowSelection]);
  // Once the list follows a search or filter (or loses a VM), ticks of VMs no longer listed go,
  // and those still listed stay: a row ticked just before the search applied is not lost.
  useEffect(() => {
    if (updating) return;
    setRowSelection((current) => {
      const ids = Object.keys(current);
      if (ids.length === 0) return current;
      const listed = new Set(list.rows.map((vm) => vm.id));
      const kept = Object.entries(current).filter(([id]) => listed.has(id));
      return kept.length === ids.length ? current : Object.fromEntries(kept);
    });
  }, [updating, list.rows]);
  const selected = allMatching ?? ticked;
  const clearSelection = () => {
    setRowSelection({});
    setAllMatching(undefined);
  };
  const changeFilter = (next: VmFilter) => {
    // "All that match" was for the previous filter; ticks are kept while their rows stay listed.
    setAllMatching(undefined);
    setFilter(next);
  };
  /** Reads every page of the list as filtered (1,000 rows a call), keeping the VMs this person may act on. */
  async function selectAllMatching() {
    setReadingAll(true);
    try {
      const rows: VmRow[] = [];
      for (let cursor: string | undefined, more = true; more;) {
        const page = await client.vm.list.query({ ...listQuery(filter, sort), limit: 1000, cursor });
        rows.push(...page.items.filter((vm) => canControl(me, vm)));
        cursor = page.nextCursor ?? undefined;
        more = cursor !== undefined;
      }
      setAllMatching(rows);
    } finally {
      setReadingAll(false);
    }
  }
  const everyListedTicked = ticked.length > 0 && ticked.length === list.rows.filter((vm) => canControl(me, vm)).length;
  /** A click on a sortable column's header: that column ascending, or the other way round if it already sorts. */
  const sortBy = (key: SortKey) => setSort((current) => (current.key === key ? { key, desc: !current.desc } : { key, desc: false }));
  const rows = table.getRowModel().rows;

  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_ESTIMATE,
    overscan: OVERSCAN,
    initialRect: { width: 0, height: FIRST_RENDER_HEIGHT },
    getItemKey: (index) => rows[index]?.id ?? index,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items[items.length - 1]?.index ?? -1;
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = list;
  useEffect(() => {
    if (hasNextPage && !isFetchingNextPage && lastIndex >= rows.length - PREFETCH_ROWS) fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage, lastIndex, rows.length]);

  const top = items[0]?.start ?? 0;
  const bottom = virtualizer.getTotalSize() - (items[items.length - 1]?.end ?? 0);
  const columnCount = table.getVisibleLeafColumns().length;

  return (
    <div className="stack tight">
      <VmFilters filter={filter} onChange={changeFilter} search={search} onSearch={setSearch} me={me} />
      {selected.length > 0 ? (
        <VmBulkActions
          selected={selected}
          onClear={clearSelection}
          onDeleted={(ids) => {
            setRowSelection((current) => Object.fromEntries(Object.entries(current).filter(([id]) => !ids.includes(id))));
            setAllMatching((current) => current?.filter((vm) => !ids.includes(vm.id)));
          }}
          // Rows on pages not loaded get no live changes: read them again for their new states.
          onDone={() => void (allMatching ? selectAllMatching() : undefined)}
          more={
            !allMatching && !updating && everyListedTicked && list.total > list.rows.length ? (
              <button type="button" className="link-button" disabled={readingAll} onClick={() => void selectAllMatching()}>
                {readingAll ? "Reading the list…" : `Select all ${list.total} VMs that match`}
              </button>
            ) : null
          }
        />
      ) : null}
      <section className="card flush" aria-label="VM list" aria-busy={updating}>
        <p className="table-count muted small" role="status" data-testid="vm-count">
          {list.isPending ? "Loading VMs…" : updating ? "Updating the list…" : `${list.total} VM${list.total === 1 ? "" : "s"}`}
        </p>
        {list.error ? <ErrorAlert message={errorText(list.error)} /> : null}
        {!list.isPending && rows.length === 0 ? <p className="empty">{emptyText(filter, me.role)}</p> : null}
        {rows.length > 0 ? (
          <div className="table-scroll" ref={scroller}>
            <table className="table" aria-rowcount={list.total + 1}>
              <thead>
                {table.getHeaderGroups().map((group) => (
                  <tr key={group.id} aria-rowindex={1}>
                    {group.headers.map((header) => {
                      const sorted = header.column.getIsSorted();
                      const id = header.column.id;
                      // vm.list's sort keys are the ids of the columns it sorts by.
                      const sortKey = isSortKey(id) ? id : undefined;
                      const numeric = header.column.columnDef.meta?.numeric ? "num" : undefined;
                      return (
                        <th key={header.id} className={numeric} aria-sort={sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : undefined}>
                          {sortKey ? (
                            <button type="button" className="sort-button" onClick={() => sortBy(sortKey)}>
                              {flexRender(header.column.columnDef.header, header.getContext())}
                              <span aria-hidden="true">{sorted === "asc" ? " ▲" : sorted === "desc" ? " ▼" : ""}</span>
                            </button>
                          ) : (
                            flexRender(header.column.columnDef.header, header.getContext())
                          )}
                        </th>
                      );
                    })}
                  </tr>
                ))}
              </thead>
              <tbody>
                {top > 0 ? (
                  <tr aria-hidden="true">
                    <td colSpan={columnCount} style={{ height: top, padding: 0, border: "none" }} />
                  </tr>
                ) : null}
                {items.map((item) => {
                  const row = rows[item.index];
                  return row ? (
                    <VmTableRow
                      key={row.id}
                      row={row}
                      vm={row.original}
                      selected={row.getIsSelected()}
                      index={item.index}
                      measure={virtualizer.measureElement}
                    />
                  ) : null;
                })}
                {bottom > 0 ? (
                  <tr aria-hidden="true">
                    <td colSpan={columnCount} style={{ height: bottom, padding: 0, border: "none" }} />
                  </tr>
                ) : null}
              </tbody>
            </table>
          </div>
        ) : null}
        {list.isFetchingNextPage ? <p className="muted small table-count">Loading more…</p> : null}
      </section>
    </div>
  );
}

interface RowProps {
  row: Row<VmRow>;
  /** The row's data: compared by identity, so an unchanged VM does not render again. */
  vm: VmRow;
  selected: boolean;
  index: number;
  measure: (element: HTMLTableRowElement | null) => void;
}

const VmTableRow = memo(
  function VmTableRow({ row, vm, index, measure }: RowProps) {
    return (
      <tr ref={measure} data-index={index} aria-rowindex={index + 2} data-testid="vm-row" data-vm-name={vm.name} data-vm-id={vm.id}>
        {row.getVisibleCells().map((cell) => {
          const meta = cell.column.columnDef.meta;
          return (
            <td key={cell.id} className={meta?.numeric ? "num" : undefined} data-testid={meta?.testId}>
              {flexRender(cell.column.columnDef.cell, cell.getContext())}
            </td>
          );
        })}
      </tr>
    );
  },
  (before, after) => before.vm === after.vm && before.selected === after.selected && before.index === after.index && before.measure === after.measure,
);
