/**
 * The way through sign-in and back: the page that asked for it goes in `next`, and only a
 * path on this site comes out. Pure, so the browser's URL rules are tested here.
 */

/** Pages anyone may open without a session. */
export const OPEN_PAGES = ["/sign-in", "/setup"];

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
