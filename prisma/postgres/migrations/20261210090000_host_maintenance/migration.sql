-- A host in maintenance (host.evacuate) takes no new VMs, and the VMs an evacuation moved away remember where from, so host.restore brings them back.
ALTER TABLE "Host" ADD COLUMN "maintenanceSince" TIMESTAMP(3);
ALTER TABLE "Vm" ADD COLUMN "evacuatedFrom" TEXT;
