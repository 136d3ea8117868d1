import type { Metadata } from "next";
import { TokensPanel } from "@/components/tokens-panel.tsx";

export const metadata: Metadata = { title: "API tokens" };

export default function Page() {
  return (
    <>
      <h1>API tokens</h1>
      <TokensPanel />
    </>
  );
}
