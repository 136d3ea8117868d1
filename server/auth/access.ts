/**
 * "Who may do what has changed": a token revoked, a user disabled, demoted or removed, or
 * their sessions ended. Cached token checks made before it no longer serve, and what stays
 * connected (the API's WebSocket, terminals) checks its caller again at once rather than at
 * its next sweep. Other hosts notice at their own sweeps.
 */
import type { Db } from "../db.ts";

const generations = new WeakMap<Db, number>();
const listeners = new WeakMap<Db, Set<() => void>>();

export function accessChanged(db: Db): void {
  generations.set(db, accessGeneration(db) + 1);
  for (const listener of listeners.get(db) ?? []) listener();
}

/** How many changes of access there have been through `db` in this process. */
export function accessGeneration(db: Db): number {
  return generations.get(db) ?? 0;
}

/** Calls `listener` after each accessChanged(db); the returned function stops that. */
export function onAccessChange(db: Db, listener: () => void): () => void {
  let set = listeners.get(db);
  if (!set) listeners.set(db, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}
