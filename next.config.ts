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
};

export default config;
