"use client";
/** Renders its children only for users who may create things (operators and admins). */
import type { ReactNode } from "react";
import { useMe } from "./session.tsx";

export function OperatorOnly({ children }: { children: ReactNode }) {
  const me = useMe();
  return me && me.role !== "viewer" ? <>{children}</> : null;
}
