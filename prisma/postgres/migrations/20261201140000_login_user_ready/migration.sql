-- AlterTable
ALTER TABLE "Image" ADD COLUMN     "loginUser" TEXT NOT NULL DEFAULT 'hangar';

-- AlterTable
ALTER TABLE "Vm" ADD COLUMN     "readyAt" TIMESTAMP(3),
ADD COLUMN     "readyDetail" TEXT,
ADD COLUMN     "readyState" TEXT;
