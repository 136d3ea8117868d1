import path from "node:path";
import type { Metadata } from "next";
import { connection } from "next/server";
import { VmDetails } from "@/components/vm-details.tsx";

export const metadata: Metadata = { title: "VM" };

export default async function VmPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  // Read at request time: the state directory of the server this page is served by,
  // for the SSH key path hint (the same default as the server: ./data).
  await connection();
  const stateDir = path.resolve(/* turbopackIgnore: true */ process.env.HANGAR_STATE_DIR ?? "data");
  return <VmDetails id={id} stateDir={stateDir} />;
}
