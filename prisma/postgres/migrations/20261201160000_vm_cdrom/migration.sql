-- AlterTable: an ISO image in the VM's CD-ROM drive.
ALTER TABLE "Vm" ADD COLUMN "cdromImageId" TEXT;

-- AddForeignKey
ALTER TABLE "Vm" ADD CONSTRAINT "Vm_cdromImageId_fkey" FOREIGN KEY ("cdromImageId") REFERENCES "Image"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
