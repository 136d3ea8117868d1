import type { Metadata } from "next";
import { FirstAdminForm } from "@/components/first-admin-form.tsx";

export const metadata: Metadata = { title: "First admin" };

export default function SetupPage() {
  return <FirstAdminForm />;
}
