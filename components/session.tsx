"use client";
/**
 * Who is signed in (account.me), the gate that sends everyone else to sign in (or, on a
 * fresh install, to create the first admin) and the signed-in away from those two pages,
 * and the menu with Sign out.
 */
import { useQuery } from "@tanstack/react-query";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, useSyncExternalStore, type ReactNode } from "react";
import { OPEN_PAGES, afterSignIn, detour, signInFor } from "./sign-in-path.ts";
import { useTRPC, type RouterOutputs } from "./trpc.ts";

export type Me = NonNullable<RouterOutputs["account"]["me"]["user"]>;

/**
 * After the session changed (sign-in, first admin, sign-out): a whole new page at `path`,
 * not a client-side route change, so every query, the live stream and its WebSocket start
 * again under the new session. A cleared cache leaves mounted hooks on queries that are gone,
 * and an open WebSocket keeps the identity it was opened with.
 */
export function startOverAt(path: string): void {
  window.location.assign(path);
}

/** Called with every failed query and change: a 401 means the session ended (expired, signed out elsewhere), so sign in again. */
export function signInAgainIfUnauthorized(status: number | undefined): void {
  if (status !== 401 || typeof window === "undefined" || OPEN_PAGES.includes(window.location.pathname)) return;
  startOverAt(signInFor(window.location.pathname + window.location.search));
}

export function useMe(): Me | null | undefined {
  const trpc = useTRPC();
  const me = useQuery(trpc.account.me.queryOptions(undefined, { staleTime: 60_000 }));
  return me.data ? me.data.user : undefined;
}

/**
 * Pages the server renders with their data, so that they show before the tab's scripts have
 * run: the inventory, which comes with its first rows (server/api/http.ts pageSeed). Their
 * first render in the browser must equal the server's, e.g. ages count to the seed's time.
 */
const SERVER_RENDERED_PAGES = ["/"];

/** For useSyncExternalStore: false while rendered on the server and hydrated, true after. */
const noChange = () => () => undefined;
const inBrowser = () => true;
const onServer = () => false;

export function SessionGate({ children }: { children: ReactNode }) {
  const trpc = useTRPC();
  const router = useRouter();
  const pathname = usePathname() ?? "/";
  const me = useQuery(trpc.account.me.queryOptions(undefined, { staleTime: 60_000 }));
  // The server knows who is signed in (the top bar shows it at once), but most pages render
  // in the browser only: their first render waits for the tab to run.
  const mounted = useSyncExternalStore(noChange, inBrowser, onServer);
  const open = OPEN_PAGES.includes(pathname);
  const away = me.data ? detour(pathname, { signedIn: me.data.user !== null, needsFirstAdmin: me.data.needsFirstAdmin }) : undefined;
  useEffect(() => {
    if (away === "setup") router.replace("/setup");
    else if (away === "sign-in") router.replace(signInFor(window.location.pathname + window.location.search));
    else if (away === "back") router.replace(afterSignIn(new URLSearchParams(window.location.search).get("next"), window.location.origin));
  }, [away, router]);
  if (away) return <p className="muted">Checking your session…</p>;
  if (open) return <>{children}</>;
  if (!me.data || !me.data.user) return <p className="muted">Checking your session…</p>;
  if (SERVER_RENDERED_PAGES.includes(pathname)) {
    // Shown before the tab's scripts run, and inert until they do: a click or a keystroke
    // there would be lost (Playwright, too, waits for the controls to be enabled).
    return (
      <fieldset className="page-frame" disabled={!mounted}>
        {children}
      </fieldset>
    );
  }
  if (!mounted) return <p className="muted">Checking your session…</p>;
  return <>{children}</>;
}

export function UserMenu() {
  const me = useMe();
  if (!me) return null;
  async function signOut() {
    await fetch("/api/auth/sign-out", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    startOverAt("/sign-in");
  }
  return (
    <div className="user-menu">
      <span className="muted">
        {me.email} · {me.role}
      </span>
      <button type="button" className="link-button" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}
