-- AlterTable
ALTER TABLE "Event" ADD COLUMN     "requestId" TEXT;

-- CreateTable
CREATE TABLE "MetricPoint" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "subjectId" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "data" TEXT NOT NULL,

    CONSTRAINT "MetricPoint_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "MetricPoint_at_idx" ON "MetricPoint"("at");

-- CreateIndex
CREATE UNIQUE INDEX "MetricPoint_kind_subjectId_at_key" ON "MetricPoint"("kind", "subjectId", "at");

