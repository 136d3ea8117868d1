import type { NextConfig } from "next";

/**
 * The dashboard only. tRPC is served by server/main.ts, not by Next, so nothing under
 * server/ is bundled: the app reaches it through type-only imports of AppRouter.
 */
const config: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // `tsc --noEmit -p .` checks the whole project, the dashboard with it, in the test line and
  // in CI; the build checking the dashboard's part again only costs time.
  typescript: { ignoreBuildErrors: true },
  // Browsers ask for /favicon.ico whatever the page's icon link says (Chromium does when a
  // page is left before its head was read): the one icon answers there too, not a 404.
  rewrites: async () => [{ source: "/favicon.ico", destination: "/favicon.svg" }],
};

export default config;
