-- The reconciler loop reads only rows in states whose qemu may run.
CREATE INDEX "Vm_state_idx" ON "Vm"("state");
