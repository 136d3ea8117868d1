import type { Metadata } from "next";
import { CreateVmForm } from "@/components/create-vm-form.tsx";
import { OperatorOnly } from "@/components/operator-only.tsx";
import { VmTable } from "@/components/vm-table.tsx";

export const metadata: Metadata = { title: "VMs" };

export default function InventoryPage() {
  return (
    <div className="stack">
      <h1>Virtual machines</h1>
      <section className="card flush">
        <VmTable />
      </section>
      <OperatorOnly>
        <CreateVmForm />
      </OperatorOnly>
    </div>
  );
}
