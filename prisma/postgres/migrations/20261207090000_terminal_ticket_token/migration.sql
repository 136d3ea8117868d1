-- The API token a terminal ticket was issued to, so its terminal ends when that token is revoked.
ALTER TABLE "TerminalTicket" ADD COLUMN "tokenId" TEXT;
