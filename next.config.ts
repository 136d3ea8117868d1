import type { NextConfig } from "next";

/**
 * The dashboard only. tRPC is served by server/main.ts, not by Next, so nothing under
 * server/ is bundled: the app reaches it through type-only imports of AppRouter.
 */
const config: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  typescript: { ignoreBuildErrors: false },
};

export default config;
