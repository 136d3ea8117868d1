-- The host bridges a host's VMs may join, so New VM offers only those and placement puts a bridged VM where its bridge is.
ALTER TABLE "Host" ADD COLUMN "bridges" TEXT NOT NULL DEFAULT '';
