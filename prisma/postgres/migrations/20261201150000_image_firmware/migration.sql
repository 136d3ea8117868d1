-- AlterTable
ALTER TABLE "Image" ADD COLUMN     "firmware" TEXT NOT NULL DEFAULT 'bios';
