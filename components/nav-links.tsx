"use client";
/** The top navigation, marking the current section. */
import Link from "next/link";
import { usePathname } from "next/navigation";

const LINKS = [
  { href: "/", label: "VMs", match: (p: string) => p === "/" || p.startsWith("/vms") },
  { href: "/images", label: "Images", match: (p: string) => p.startsWith("/images") },
];

export function NavLinks() {
  const pathname = usePathname() ?? "/";
  return (
    <nav aria-label="Main">
      {LINKS.map((link) => (
        <Link key={link.href} href={link.href} aria-current={link.match(pathname) ? "page" : undefined}>
          {link.label}
        </Link>
      ))}
    </nav>
  );
}
