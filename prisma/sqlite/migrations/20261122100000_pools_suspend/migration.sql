-- CreateTable
CREATE TABLE "Pool" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "imageId" TEXT NOT NULL,
    "cpus" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "userData" TEXT,
    "size" INTEGER NOT NULL,
    "staging" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Pool_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Vm" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'Initial',
    "imageId" TEXT NOT NULL,
    "cpus" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "userData" TEXT,
    "sshPort" INTEGER,
    "pid" INTEGER,
    "error" TEXT,
    "cloneInfo" TEXT,
    "machine" TEXT,
    "poolId" TEXT,
    "acquiredAt" DATETIME,
    "acquiredBy" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Vm_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Vm_poolId_fkey" FOREIGN KEY ("poolId") REFERENCES "Pool" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
INSERT INTO "new_Vm" ("cloneInfo", "cpus", "createdAt", "error", "id", "imageId", "memoryMiB", "name", "pid", "sshPort", "state", "updatedAt", "userData") SELECT "cloneInfo", "cpus", "createdAt", "error", "id", "imageId", "memoryMiB", "name", "pid", "sshPort", "state", "updatedAt", "userData" FROM "Vm";
DROP TABLE "Vm";
ALTER TABLE "new_Vm" RENAME TO "Vm";
CREATE UNIQUE INDEX "Vm_name_key" ON "Vm"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE UNIQUE INDEX "Pool_name_key" ON "Pool"("name");

