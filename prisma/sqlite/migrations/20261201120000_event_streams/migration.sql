-- AlterTable
ALTER TABLE "Event" ADD COLUMN "stream" TEXT NOT NULL DEFAULT 'vm';

-- Sign-ins and user, token and account changes were written before the streams existed.
UPDATE "Event" SET "stream" = 'audit' WHERE "action" IN ('sign-in', 'user-create', 'user-update', 'user-remove', 'token-create', 'token-revoke');

-- CreateIndex
CREATE INDEX "Event_stream_createdAt_idx" ON "Event"("stream", "createdAt");
