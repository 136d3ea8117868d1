"use client";
/** The top navigation, marking the current section. */
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useMe } from "./session.tsx";

const LINKS = [
  { href: "/", label: "VMs", match: (p: string) => p === "/" || p.startsWith("/vms"), admin: false },
  { href: "/pools", label: "Pools", match: (p: string) => p.startsWith("/pools"), admin: false },
  { href: "/hosts", label: "Hosts", match: (p: string) => p.startsWith("/hosts"), admin: false },
  { href: "/images", label: "Images", match: (p: string) => p.startsWith("/images"), admin: false },
  { href: "/tokens", label: "Tokens", match: (p: string) => p.startsWith("/tokens"), admin: false },
  { href: "/account", label: "Account", match: (p: string) => p.startsWith("/account"), admin: false },
  { href: "/users", label: "Users", match: (p: string) => p.startsWith("/users"), admin: true },
  { href: "/audit", label: "Audit", match: (p: string) => p.startsWith("/audit"), admin: true },
];

export function NavLinks() {
  const pathname = usePathname() ?? "/";
  const me = useMe();
  if (!me) return null;
  // No prefetch: each page reads its data itself, and prefetching every section's route made
  // each page load ask the server for eight renders beside its own first data.
  return (
    <nav aria-label="Main">
      {LINKS.filter((link) => !link.admin || me.role === "admin").map((link) => (
        <Link key={link.href} href={link.href} prefetch={false} aria-current={link.match(pathname) ? "page" : undefined}>
          {link.label}
        </Link>
      ))}
    </nav>
  );
}
