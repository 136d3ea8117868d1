-- AlterTable
ALTER TABLE "Vm" ADD COLUMN "network" TEXT NOT NULL DEFAULT 'nat';
ALTER TABLE "Vm" ADD COLUMN "bridge" TEXT;

-- VMs made before network modes existed had no way out; they keep that.
UPDATE "Vm" SET "network" = 'isolated';

-- AlterTable
ALTER TABLE "Vm" ADD COLUMN "diskGiB" INTEGER;
