-- AlterTable
ALTER TABLE "Event" ADD COLUMN "requestId" TEXT;

-- CreateTable
CREATE TABLE "MetricPoint" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "kind" TEXT NOT NULL,
    "subjectId" TEXT NOT NULL,
    "at" DATETIME NOT NULL,
    "data" TEXT NOT NULL
);

-- CreateIndex
CREATE INDEX "MetricPoint_at_idx" ON "MetricPoint"("at");

-- CreateIndex
CREATE UNIQUE INDEX "MetricPoint_kind_subjectId_at_key" ON "MetricPoint"("kind", "subjectId", "at");

