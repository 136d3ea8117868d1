-- What a VM is for, in people's words.
ALTER TABLE "Vm" ADD COLUMN "description" TEXT NOT NULL DEFAULT '';
