import type { Metadata } from "next";
import { UsersPanel } from "@/components/users-panel.tsx";

export const metadata: Metadata = { title: "Users" };

export default function Page() {
  return (
    <>
      <h1>Users</h1>
      <UsersPanel />
    </>
  );
}
