-- Several hosts on one database: terminal tickets any host can redeem, which hosts hold an
-- image's files (and the stored file's sha256 they check a copy against), the shared auth secret.
-- AlterTable
ALTER TABLE "Image" ADD COLUMN "storedSha256" TEXT;

-- CreateTable
CREATE TABLE "ImageCopy" (
    "imageId" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("imageId", "hostId"),
    CONSTRAINT "ImageCopy_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ImageCopy_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "TerminalTicket" (
    "hash" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "sessionId" TEXT,
    "vmId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "readOnly" BOOLEAN NOT NULL,
    "expiresAt" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Secret" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "value" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE INDEX "TerminalTicket_expiresAt_idx" ON "TerminalTicket"("expiresAt");

