import type { Metadata } from "next";
import { CreateVmDialog } from "@/components/create-vm-dialog.tsx";
import { OperatorOnly } from "@/components/operator-only.tsx";
import { VmTable } from "@/components/vm-table.tsx";

export const metadata: Metadata = { title: "VMs" };

export default function InventoryPage() {
  return (
    <div className="stack">
      <div className="page-head">
        <h1>Virtual machines</h1>
        <OperatorOnly>
          <CreateVmDialog />
        </OperatorOnly>
      </div>
      <VmTable />
    </div>
  );
}
