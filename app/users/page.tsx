import type { Metadata } from "next";
import { AdminOnly } from "@/components/admin-only.tsx";
import { UsersPanel } from "@/components/users-panel.tsx";

export const metadata: Metadata = { title: "Users" };

export default function Page() {
  return (
    <>
      <h1>Users</h1>
      <AdminOnly what="the users and their roles">
        <UsersPanel />
      </AdminOnly>
    </>
  );
}
