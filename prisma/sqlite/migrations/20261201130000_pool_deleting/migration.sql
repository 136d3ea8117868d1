-- AlterTable
ALTER TABLE "Pool" ADD COLUMN "deletingAt" DATETIME;
