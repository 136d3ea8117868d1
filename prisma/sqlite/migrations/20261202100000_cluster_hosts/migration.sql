-- AlterTable
ALTER TABLE "Host" ADD COLUMN "cpus" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Host" ADD COLUMN "memoryMiB" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Host" ADD COLUMN "memoryLimitMiB" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Host" ADD COLUMN "allocatedCpus" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Host" ADD COLUMN "allocatedMemoryMiB" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Host" ADD COLUMN "sshAddress" TEXT NOT NULL DEFAULT '127.0.0.1';
ALTER TABLE "Host" ADD COLUMN "leaseOwner" TEXT;
ALTER TABLE "Host" ADD COLUMN "leaseUntil" DATETIME;

-- VMs and pools from before hosts existed belong to the host that last beat (the one that
-- ran them); with no host yet, the first Hangar to start takes them (server/hosts.ts).
UPDATE "Vm" SET "hostId" = (SELECT "id" FROM "Host" ORDER BY "heartbeatAt" DESC LIMIT 1) WHERE "hostId" IS NULL;
UPDATE "Pool" SET "hostId" = (SELECT "id" FROM "Host" ORDER BY "heartbeatAt" DESC LIMIT 1) WHERE "hostId" IS NULL;
