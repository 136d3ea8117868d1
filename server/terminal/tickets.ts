/**
 * Terminal tickets: opaque, random, single use, valid 30 s, bound to the caller, the VM and
 * the kind of terminal. They live in the database (only a sha256 of each), so a ticket one
 * host issued is redeemed by whichever host the terminal's WebSocket lands on. A redeemed or
 * expired ticket is gone.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "../db.ts";
import { TERMINAL_KINDS, isTerminalKind, type TerminalKind } from "../../lib/vocabulary.ts";

export { TERMINAL_KINDS, isTerminalKind, type TerminalKind } from "../../lib/vocabulary.ts";

export interface TicketGrant {
  /** The user it was issued to (events name them; sign-out ends their terminals). */
  userId: string;
  actor: string;
  /** The browser session it came from; the terminal ends when that session does. */
  sessionId?: string;
  /** The API token it was issued to; the terminal ends when that token is revoked. */
  tokenId?: string;
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

/** A grant as it travels between hosts (in a proxied terminal's pass). */
export const ticketGrant: z.ZodType<TicketGrant> = z.object({
  userId: z.string().min(1),
  actor: z.string(),
  sessionId: z.string().min(1).optional(),
  tokenId: z.string().min(1).optional(),
  vmId: z.string().min(1),
  kind: z.enum(TERMINAL_KINDS),
  readOnly: z.boolean(),
  viaToken: z.boolean().optional(),
});

const hashOf = (ticket: string) => createHash("sha256").update(ticket).digest("hex");

export function createTicketStore({ db, ttlMs = 30_000, now = () => Date.now() }: { db: Db; ttlMs?: number; now?: () => number }) {
  return {
    async issue(grant: TicketGrant): Promise<string> {
      // Expired tickets nobody redeemed go as new ones come.
      await db.terminalTicket.deleteMany({ where: { expiresAt: { lte: new Date(now()) } } });
      const ticket = randomBytes(32).toString("base64url");
      await db.terminalTicket.create({
        data: {
          hash: hashOf(ticket),
          userId: grant.userId,
          actor: grant.actor,
          sessionId: grant.sessionId ?? null,
          tokenId: grant.tokenId ?? null,
          vmId: grant.vmId,
          kind: grant.kind,
          readOnly: grant.readOnly,
          viaToken: grant.viaToken ?? false,
          expiresAt: new Date(now() + ttlMs),
        },
      });
      return ticket;
    },
    /**
     * The grant, once; undefined for an unknown, used or expired ticket, or another VM or
     * kind. Of two hosts redeeming one ticket at once, only the one whose delete removed the
     * row gets the grant. `viaToken`: only a ticket issued to an API token; any other is
     * refused and stays valid (a client without Origin cannot burn a browser's ticket).
     */
    async redeem(ticket: string, expected: { vmId?: string; kind?: TerminalKind; viaToken?: boolean } = {}): Promise<TicketGrant | undefined> {
      const hash = hashOf(ticket);
      const entry = await db.terminalTicket.findUnique({ where: { hash } });
      if (!entry) return undefined;
      if (expected.viaToken && !entry.viaToken) return undefined;
      const { count } = await db.terminalTicket.deleteMany({ where: { hash } });
      if (count !== 1) return undefined;
      if (entry.expiresAt.getTime() <= now()) return undefined;
      if (!isTerminalKind(entry.kind)) return undefined;
      if (expected.vmId !== undefined && expected.vmId !== entry.vmId) return undefined;
      if (expected.kind !== undefined && expected.kind !== entry.kind) return undefined;
      return {
        userId: entry.userId,
        actor: entry.actor,
        ...(entry.sessionId ? { sessionId: entry.sessionId } : {}),
        ...(entry.tokenId ? { tokenId: entry.tokenId } : {}),
        vmId: entry.vmId,
        kind: entry.kind,
        readOnly: entry.readOnly,
        ...(entry.viaToken ? { viaToken: true } : {}),
      };
    },
  };
}

export type TicketStore = ReturnType<typeof createTicketStore>;
