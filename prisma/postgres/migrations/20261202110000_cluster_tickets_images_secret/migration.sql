-- Several hosts on one database: terminal tickets any host can redeem, which hosts hold an
-- image's files (and the stored file's sha256 they check a copy against), the shared auth secret.
-- AlterTable
ALTER TABLE "Image" ADD COLUMN     "storedSha256" TEXT;

-- CreateTable
CREATE TABLE "ImageCopy" (
    "imageId" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ImageCopy_pkey" PRIMARY KEY ("imageId","hostId")
);

-- CreateTable
CREATE TABLE "TerminalTicket" (
    "hash" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "sessionId" TEXT,
    "vmId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "readOnly" BOOLEAN NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TerminalTicket_pkey" PRIMARY KEY ("hash")
);

-- CreateTable
CREATE TABLE "Secret" (
    "name" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Secret_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE INDEX "TerminalTicket_expiresAt_idx" ON "TerminalTicket"("expiresAt");

-- AddForeignKey
ALTER TABLE "ImageCopy" ADD CONSTRAINT "ImageCopy_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageCopy" ADD CONSTRAINT "ImageCopy_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host"("id") ON DELETE CASCADE ON UPDATE CASCADE;

