import type { Metadata } from "next";
import { headers } from "next/headers";
import Link from "next/link";
import type { ReactNode } from "react";
import { LiveUpdates } from "@/components/live-updates.tsx";
import { NavLinks } from "@/components/nav-links.tsx";
import { SessionGate, UserMenu } from "@/components/session.tsx";
import { TrpcProvider } from "@/components/trpc-provider.tsx";
import { LIST_SEED_HEADER, SESSION_SEED_HEADER } from "@/lib/vocabulary.ts";
import "./globals.css";

/**
 * Every page is rendered per request: server/http-server.ts sends a Content-Security-Policy
 * with a fresh nonce, and Next can stamp its inline scripts with it only while rendering.
 */
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: { default: "Hangar", template: "%s · Hangar" },
  description: "QEMU virtual machines on this host",
  icons: { icon: "/favicon.svg" },
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Who is signed in, and on the inventory page its first rows, as Hangar's server read them for this page (server/http-server.ts).
  const seeds = await headers();
  return (
    <html lang="en">
      <body>
        <TrpcProvider session={seeds.get(SESSION_SEED_HEADER) ?? undefined} list={seeds.get(LIST_SEED_HEADER) ?? undefined}>
          {/* The first Tab stop: past the nine links of the top bar to the page itself. */}
          <a href="#content" className="skip-link">
            Skip to content
          </a>
          <header className="topbar">
            <div className="topbar-inner">
              <Link href="/" className="brand">
                Hangar
              </Link>
              <NavLinks />
              <LiveUpdates />
              <UserMenu />
            </div>
          </header>
          <main className="container" id="content" tabIndex={-1}>
            <SessionGate>{children}</SessionGate>
          </main>
        </TrpcProvider>
      </body>
    </html>
  );
}
