-- Start at boot: the order among the host's autostart VMs, and a delay before the next.
ALTER TABLE "Vm" ADD COLUMN "autostartOrder" INTEGER;
ALTER TABLE "Vm" ADD COLUMN "autostartDelaySec" INTEGER NOT NULL DEFAULT 0;
