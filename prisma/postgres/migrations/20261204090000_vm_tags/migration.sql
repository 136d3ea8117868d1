-- Tags for people to group and find VMs by, separated by one space.
ALTER TABLE "Vm" ADD COLUMN "tags" TEXT NOT NULL DEFAULT '';
