-- CreateEnum
CREATE TYPE "CalibrationMethod" AS ENUM ('entropy', 'percentile', 'minmax');

-- AlterTable
ALTER TABLE "builds" ADD COLUMN     "calibrationMethod" "CalibrationMethod",
ADD COLUMN     "calibrationPercentile" DOUBLE PRECISION,
ADD COLUMN     "calibrationSetId" TEXT,
ADD COLUMN     "calibrationSha256" TEXT;

-- CreateTable
CREATE TABLE "calibration_sets" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "modelVersionId" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "sizeBytes" BIGINT NOT NULL,
    "storageKey" TEXT NOT NULL,
    "sampleCount" INTEGER NOT NULL,
    "arrays" JSONB NOT NULL,
    "uploadedById" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "calibration_sets_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "calibration_sets_orgId_modelVersionId_createdAt_idx" ON "calibration_sets"("orgId", "modelVersionId", "createdAt");

-- CreateIndex
CREATE INDEX "calibration_sets_modelVersionId_idx" ON "calibration_sets"("modelVersionId");

-- CreateIndex
CREATE INDEX "builds_calibrationSetId_idx" ON "builds"("calibrationSetId");

-- AddForeignKey
ALTER TABLE "builds" ADD CONSTRAINT "builds_calibrationSetId_fkey" FOREIGN KEY ("calibrationSetId") REFERENCES "calibration_sets"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "calibration_sets" ADD CONSTRAINT "calibration_sets_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "calibration_sets" ADD CONSTRAINT "calibration_sets_modelVersionId_fkey" FOREIGN KEY ("modelVersionId") REFERENCES "model_versions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
