-- The host running an import: a restart of another host leaves it alone.
ALTER TABLE "Image" ADD COLUMN "importHostId" TEXT;
