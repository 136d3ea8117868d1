-- AlterTable
ALTER TABLE "TerminalTicket" ADD COLUMN "viaToken" BOOLEAN NOT NULL DEFAULT false;
