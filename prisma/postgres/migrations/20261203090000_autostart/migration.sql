-- VMs started when their host has booted, and the boot whose autostart is done.
ALTER TABLE "Vm" ADD COLUMN "autostart" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "Host" ADD COLUMN "bootId" TEXT;
