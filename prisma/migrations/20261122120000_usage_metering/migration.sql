-- AlterTable
ALTER TABLE "usage_rollups" ADD COLUMN     "latencyBuckets" BIGINT[] NOT NULL DEFAULT ARRAY[]::BIGINT[];

-- CreateTable
CREATE TABLE "usage_event_receipts" (
    "id" TEXT NOT NULL,
    "processedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "usage_event_receipts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "usage_event_receipts_processedAt_idx" ON "usage_event_receipts"("processedAt");
