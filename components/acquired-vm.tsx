"use client";
/** What Acquire handed out: the VM, the SSH command and, when it has one, the private key (as text). */
import Link from "next/link";
import { CopyCommand } from "./copy-command.tsx";
import type { RouterOutputs } from "./trpc.ts";

export type Acquired = RouterOutputs["pool"]["acquire"];

export function AcquiredVm({ acquired }: { acquired: Acquired }) {
  const keyFile = `${acquired.name}.key`;
  return (
    <div className="stack tight" data-testid="acquired">
      <p className="notice">
        Acquired <Link href={`/vms/${acquired.vmId}`}>{acquired.name}</Link>. It is yours until you release it.
        {acquired.privateKey ? ` Save the private key below as ${keyFile} (chmod 600), then:` : " Connect with your own key:"}
      </p>
      <CopyCommand
        label={acquired.privateKey ? "Through Hangar, with that key" : "Through Hangar (your keys from the Account page)"}
        command={acquired.privateKey ? `hangar ssh -i ${keyFile} ${acquired.name}` : `hangar ssh ${acquired.name}`}
      />
      <CopyCommand
        label="Straight to its forwarded SSH port"
        command={`ssh -p ${acquired.sshPort} -i ${acquired.privateKey ? keyFile : "<your key>"} ${acquired.user}@${acquired.host}`}
      />
      {acquired.privateKey ? (
        <details>
          <summary>Private key</summary>
          <pre className="serial" aria-label="Private key">
            {acquired.privateKey}
          </pre>
        </details>
      ) : null}
    </div>
  );
}
