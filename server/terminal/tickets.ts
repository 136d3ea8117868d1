/**
 * Terminal tickets: opaque, random, single use, valid 30 s, bound to the caller, the VM and
 * the kind of terminal. Only a hash is kept; a redeemed or expired ticket is gone.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** `tunnel`: raw bytes to the VM's SSH port, for the user's own ssh (`hangar proxy`). */
export const TERMINAL_KINDS = ["console", "shell", "monitor", "display", "tunnel"] as const;
export type TerminalKind = (typeof TERMINAL_KINDS)[number];

export function isTerminalKind(value: string): value is TerminalKind {
  return (TERMINAL_KINDS as readonly string[]).includes(value);
}

export interface TicketGrant {
  /** The user it was issued to (events name them; sign-out ends their terminals). */
  userId: string;
  actor: string;
  /** The browser session it came from; the terminal ends when that session does. */
  sessionId?: string;
  vmId: string;
  kind: TerminalKind;
  /** Console and display viewers who may watch but not type. */
  readOnly: boolean;
  /**
   * Issued to an API token (Authorization: Bearer), which no page of another site can make
   * a browser send: such a ticket may be redeemed by a client that sends no Origin (a CLI).
   */
  viaToken?: boolean;
}

interface Entry extends TicketGrant {
  hash: Buffer;
  expiresAt: number;
}

const hashOf = (ticket: string) => createHash("sha256").update(ticket).digest();

export function createTicketStore({ ttlMs = 30_000, now = () => Date.now() } = {}) {
  const entries = new Map<string, Entry>();

  function sweep(): void {
    for (const [key, entry] of entries) if (entry.expiresAt <= now()) entries.delete(key);
  }

  return {
    issue(grant: TicketGrant): string {
      sweep();
      const ticket = randomBytes(32).toString("base64url");
      const hash = hashOf(ticket);
      entries.set(hash.toString("hex"), { ...grant, hash, expiresAt: now() + ttlMs });
      return ticket;
    },
    /**
     * The grant, once; undefined for an unknown, used or expired ticket, or another VM or kind.
     * `viaToken`: only a ticket issued to an API token; any other is refused and stays valid
     * (a client without Origin cannot burn a browser's ticket).
     */
    redeem(ticket: string, expected: { vmId?: string; kind?: TerminalKind; viaToken?: boolean } = {}): TicketGrant | undefined {
      const hash = hashOf(ticket);
      const entry = entries.get(hash.toString("hex"));
      if (!entry || !timingSafeEqual(entry.hash, hash)) return undefined;
      if (expected.viaToken && !entry.viaToken) return undefined;
      entries.delete(hash.toString("hex"));
      if (entry.expiresAt <= now()) return undefined;
      if (expected.vmId !== undefined && expected.vmId !== entry.vmId) return undefined;
      if (expected.kind !== undefined && expected.kind !== entry.kind) return undefined;
      const { hash: _hash, expiresAt: _expiresAt, ...grant } = entry;
      return grant;
    },
    get size(): number {
      sweep();
      return entries.size;
    },
  };
}

export type TicketStore = ReturnType<typeof createTicketStore>;
