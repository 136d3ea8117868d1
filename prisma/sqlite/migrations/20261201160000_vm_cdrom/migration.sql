-- AlterTable: an ISO image in the VM's CD-ROM drive. ADD COLUMN with its foreign key, not a
-- table rebuild, so migrations that add other columns to "Vm" keep theirs.
ALTER TABLE "Vm" ADD COLUMN "cdromImageId" TEXT REFERENCES "Image" ("id") ON DELETE RESTRICT ON UPDATE CASCADE;
