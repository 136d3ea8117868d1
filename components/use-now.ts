"use client";
import { createContext, useContext, useEffect, useState, useSyncExternalStore } from "react";

/**
 * One clock for every "3m ago" cell on the page: a single timer, started by the first cell
 * that shows and stopped with the last, ticks once a minute. Only the cells on screen (the
 * virtualized table mounts no others) subscribe, so a tick re-renders those cells alone,
 * never the table around them.
 */
const TICK_MS = 60_000;
const listeners = new Set<() => void>();
let now = Date.now();
let timer: ReturnType<typeof setInterval> | undefined;

function subscribe(listener: () => void): () => void {
  if (listeners.size === 0) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const notify of listeners) notify();
    }, TICK_MS);
  }
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) clearInterval(timer);
  };
}

/**
 * When the server read what the page shows (the inventory's seed), for a page rendered on the
 * server: its render and the tab's first (hydration) count ages to the same moment, so they
 * agree; the tab moves to its own clock right after.
 */
export const RenderedAt = createContext<number | undefined>(undefined);

/** The time of the shared clock's last tick (Date.now() to the minute). */
export function useMinuteClock(): number {
  const renderedAt = useContext(RenderedAt);
  return useSyncExternalStore(
    subscribe,
    () => now,
    () => renderedAt ?? now,
  );
}

/** The current time, refreshed every `intervalMs`, for one small view (a heartbeat's age on the Hosts page). */
export function useNow(intervalMs: number): number {
  const [current, setCurrent] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setCurrent(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return current;
}
