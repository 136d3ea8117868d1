"use client";
/** Renders its children for admins; anyone else who opens the page reads why it is empty. */
import type { ReactNode } from "react";
import { useMe } from "./session.tsx";

export function AdminOnly({ what, children }: { what: string; children: ReactNode }) {
  const me = useMe();
  if (!me) return null;
  if (me.role === "admin") return <>{children}</>;
  return (
    <p className="notice" role="status">
      Only admins see {what}. You are signed in as {me.role === "operator" ? "an operator" : "a viewer"}; ask an admin if you need a change here.
    </p>
  );
}
