-- The audit log filters by VM name: a deleted VM's events keep only its name.
CREATE INDEX "Event_vmName_createdAt_idx" ON "Event"("vmName", "createdAt");
