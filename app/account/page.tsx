import type { Metadata } from "next";
import { PasswordForm } from "@/components/password-form.tsx";
import { SshKeysPanel } from "@/components/ssh-keys-panel.tsx";

export const metadata: Metadata = { title: "Account" };

export default function Page() {
  return (
    <>
      <h1>Account</h1>
      <div className="stack">
        <SshKeysPanel />
        <PasswordForm />
      </div>
    </>
  );
}
