-- AlterTable
ALTER TABLE "Pool" ADD COLUMN     "deletingAt" TIMESTAMP(3);
