-- A pool release under way, so one cut short by the end of Hangar is completed at its next start.
ALTER TABLE "Vm" ADD COLUMN "releasePending" BOOLEAN NOT NULL DEFAULT false;
