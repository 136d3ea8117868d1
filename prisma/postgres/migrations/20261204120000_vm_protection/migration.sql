-- Protection: a protected VM cannot be deleted.
ALTER TABLE "Vm" ADD COLUMN "protection" BOOLEAN NOT NULL DEFAULT false;
