import type { Metadata } from "next";
import { AuditLog } from "@/components/audit-log.tsx";

export const metadata: Metadata = { title: "Audit log" };

export default function Page() {
  return (
    <>
      <h1>Audit log</h1>
      <AuditLog />
    </>
  );
}
