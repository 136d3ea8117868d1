-- The version of qemu each host runs and its CPU model, so a Suspended VM moves only to a host that loads its saved state.
ALTER TABLE "Host" ADD COLUMN "qemuVersion" TEXT NOT NULL DEFAULT '';
ALTER TABLE "Host" ADD COLUMN "cpuModel" TEXT NOT NULL DEFAULT '';
