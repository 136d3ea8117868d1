-- AlterTable
ALTER TABLE "Image" ADD COLUMN "loginUser" TEXT NOT NULL DEFAULT 'hangar';

-- AlterTable
ALTER TABLE "Vm" ADD COLUMN "readyAt" DATETIME;
ALTER TABLE "Vm" ADD COLUMN "readyDetail" TEXT;
ALTER TABLE "Vm" ADD COLUMN "readyState" TEXT;
