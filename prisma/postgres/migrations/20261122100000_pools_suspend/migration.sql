-- AlterTable
ALTER TABLE "Vm" ADD COLUMN     "acquiredAt" TIMESTAMP(3),
ADD COLUMN     "acquiredBy" TEXT,
ADD COLUMN     "machine" TEXT,
ADD COLUMN     "poolId" TEXT;

-- CreateTable
CREATE TABLE "Pool" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "imageId" TEXT NOT NULL,
    "cpus" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "userData" TEXT,
    "size" INTEGER NOT NULL,
    "staging" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Pool_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Pool_name_key" ON "Pool"("name");

-- AddForeignKey
ALTER TABLE "Vm" ADD CONSTRAINT "Vm_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "Pool"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pool" ADD CONSTRAINT "Pool_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

