/**
 * The way through sign-in and back: the page that asked for it goes in `next`, and only a
 * path on this site comes out. Pure, so the browser's URL rules are tested here.
 */

/** Pages anyone may open without a session. */
export const OPEN_PAGES = ["/sign-in", "/setup"];

/** Who is at the door: signed in or not, and whether Hangar still has no user at all. */
export interface Visitor {
  signedIn: boolean;
  needsFirstAdmin: boolean;
}

/**
 * Where a visitor is sent instead of the page at `pathname`, or undefined to show it: to the
 * first-admin form while Hangar has no user, to sign-in without a session, and "back" (where
 * sign-in would have sent them) from the pages for people not signed in, once they are. The
 * first-admin form is for a Hangar without users only: it would say there are none, and the
 * server refuses it anyway.
 */
export function detour(pathname: string, visitor: Visitor): "setup" | "sign-in" | "back" | undefined {
  if (visitor.needsFirstAdmin) return pathname === "/setup" ? undefined : "setup";
  if (!visitor.signedIn) return pathname === "/sign-in" ? undefined : "sign-in";
  return OPEN_PAGES.includes(pathname) ? "back" : undefined;
}

/** The sign-in page, told to come back to `from` afterwards (unless that is the dashboard or an open page). */
export function signInFor(from: string): string {
  const pathname = from.split("?")[0] ?? "/";
  return pathname === "/" || OPEN_PAGES.includes(pathname) ? "/sign-in" : `/sign-in?next=${encodeURIComponent(from)}`;
}

/**
 * Where to go after signing in: `next` when it is a path on this site, else the dashboard.
 * Resolved as the browser would (it drops tabs and newlines, reads "\\" as "/"), so no
 * spelling of another origin gets through.
 */
export function afterSignIn(next: string | null, origin: string): string {
  if (!next?.startsWith("/")) return "/";
  const target = new URL(next, origin);
  return target.origin === origin ? `${target.pathname}${target.search}${target.hash}` : "/";
}
