import type { Metadata } from "next";
import { AdminOnly } from "@/components/admin-only.tsx";
import { AuditLog } from "@/components/audit-log.tsx";

export const metadata: Metadata = { title: "Audit log" };

export default function Page() {
  return (
    <>
      <h1>Audit log</h1>
      <AdminOnly what="the audit log">
        <AuditLog />
      </AdminOnly>
    </>
  );
}
