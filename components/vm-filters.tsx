"use client";
/**
 * The inventory's search box and filters. The choices come from the hosts, images, pools
 * and tags there are; an admin may also pick any user as the owner. Typing in the search box narrows
 * the list once the typing pauses, so each keystroke does not ask for a new list.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useId } from "react";
import type { Me } from "./session.tsx";
import { STATE_NAMES } from "./state-badge.tsx";
import { useTRPC } from "./trpc.ts";
import type { VmFilter } from "./vm-filter.ts";

const SEARCH_PAUSE_MS = 250;

/**
 * `search` is what is typed, held by the table (which shows that the list is still to follow
 * it); `filter.search` is what the list was asked for.
 */
export function VmFilters({
  filter,
  onChange,
  search,
  onSearch,
  me,
}: {
  filter: VmFilter;
  onChange: (filter: VmFilter) => void;
  search: string;
  onSearch: (search: string) => void;
  me: Me;
}) {
  const trpc = useTRPC();
  const id = useId();
  const hosts = useQuery(trpc.host.list.queryOptions(undefined, { staleTime: 60_000 }));
  const images = useQuery(trpc.image.list.queryOptions(undefined, { staleTime: 60_000 }));
  const pools = useQuery(trpc.pool.list.queryOptions(undefined, { staleTime: 60_000 }));
  const users = useQuery(trpc.user.list.queryOptions(undefined, { staleTime: 60_000, enabled: me.role === "admin" }));
  // Tags come and go with the VMs: read again when the page is shown again, not on each change.
  const tags = useQuery(trpc.vm.listTags.queryOptions(undefined, { staleTime: 10_000 }));
  const tagChoices = (tags.data ?? []).map((entry) => entry.tag);
  // A tag picked in a row stays a choice even before the list of tags has it.
  if (filter.tag && !tagChoices.includes(filter.tag)) tagChoices.unshift(filter.tag);

  useEffect(() => {
    if (search === filter.search) return;
    const timer = setTimeout(() => onChange({ ...filter, search }), SEARCH_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [search, filter, onChange]);

  const set = (change: Partial<VmFilter>) => onChange({ ...filter, ...change });
  const others = (users.data ?? []).filter((user) => user.id !== me.userId);

  return (
    <div role="search" className="filters" aria-label="Search and filter VMs">
      <label className="field grow" htmlFor={`${id}-search`}>
        <span>Search</span>
        <input
          id={`${id}-search`}
          type="search"
          aria-label="Search VMs by name"
          placeholder="Name contains…"
          value={search}
          onChange={(e) => onSearch(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
      </label>
      <div className="field">
        <span aria-hidden="true">State</span>
        <select aria-label="Filter by state" value={filter.state} onChange={(e) => set({ state: STATE_NAMES.find((state) => state === e.target.value) ?? "" })}>
          <option value="">Any state</option>
          {STATE_NAMES.map((state) => (
            <option key={state} value={state}>
              {state}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <span aria-hidden="true">Owner</span>
        <select aria-label="Filter by owner" value={filter.owner} onChange={(e) => set({ owner: e.target.value })}>
          <option value="all">Everyone</option>
          <option value="mine">My VMs</option>
          {others.map((user) => (
            <option key={user.id} value={user.id}>
              {user.email}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <span aria-hidden="true">Host</span>
        <select aria-label="Filter by host" value={filter.hostId} onChange={(e) => set({ hostId: e.target.value })}>
          <option value="">Any host</option>
          {(hosts.data ?? []).map((host) => (
            <option key={host.id} value={host.id}>
              {host.name}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <span aria-hidden="true">Image</span>
        <select aria-label="Filter by image" value={filter.imageId} onChange={(e) => set({ imageId: e.target.value })}>
          <option value="">Any image</option>
          {(images.data ?? []).map((image) => (
            <option key={image.id} value={image.id}>
              {image.name}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <span aria-hidden="true">Pool</span>
        <select aria-label="Filter by pool" value={filter.poolId} onChange={(e) => set({ poolId: e.target.value })}>
          <option value="">Any pool</option>
          {(pools.data ?? []).map((pool) => (
            <option key={pool.id} value={pool.id}>
              {pool.name}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <span aria-hidden="true">Tag</span>
        <select aria-label="Filter by tag" value={filter.tag} onChange={(e) => set({ tag: e.target.value })}>
          <option value="">Any tag</option>
          {tagChoices.map((tag) => (
            <option key={tag} value={tag}>
              {tag}
            </option>
          ))}
        </select>
      </div>
    </div>
  );
}
