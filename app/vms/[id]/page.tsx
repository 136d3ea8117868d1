import type { Metadata } from "next";
import { VmDetails } from "@/components/vm-details.tsx";

export const metadata: Metadata = { title: "VM" };

export default async function VmPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <VmDetails id={id} />;
}
