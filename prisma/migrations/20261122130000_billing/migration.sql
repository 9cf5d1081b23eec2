-- CreateEnum
CREATE TYPE "BillingNoticeKind" AS ENUM ('spend_cap_50', 'spend_cap_80', 'spend_cap_100', 'payment_failed', 'downgraded');

-- CreateEnum
CREATE TYPE "MeterEventStatus" AS ENUM ('pending', 'sending', 'sent', 'failed');

-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN "graceEndsAt" TIMESTAMP(3),
ADD COLUMN "stripeEventAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "stripe_events" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "processedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "stripe_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "spend_caps" (
    "orgId" TEXT NOT NULL,
    "monthlyCapCents" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "spend_caps_pkey" PRIMARY KEY ("orgId")
);

-- CreateTable
CREATE TABLE "billing_notices" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "kind" "BillingNoticeKind" NOT NULL,
    "dedupeKey" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dismissedAt" TIMESTAMP(3),

    CONSTRAINT "billing_notices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "meter_event_outbox" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "usageRollupId" TEXT NOT NULL,
    "eventName" TEXT NOT NULL,
    "identifier" TEXT NOT NULL,
    "stripeCustomerId" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "timestamp" TIMESTAMP(3) NOT NULL,
    "status" "MeterEventStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "sendingSince" TIMESTAMP(3),
    "lastError" TEXT,
    "sentAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "meter_event_outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "billing_notices_orgId_createdAt_idx" ON "billing_notices"("orgId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "billing_notices_orgId_kind_dedupeKey_key" ON "billing_notices"("orgId", "kind", "dedupeKey");

-- CreateIndex
CREATE UNIQUE INDEX "meter_event_outbox_identifier_key" ON "meter_event_outbox"("identifier");

-- CreateIndex
CREATE INDEX "meter_event_outbox_nextAttemptAt_idx" ON "meter_event_outbox"("nextAttemptAt");

-- CreateIndex
CREATE INDEX "meter_event_outbox_orgId_createdAt_idx" ON "meter_event_outbox"("orgId", "createdAt");

-- AddForeignKey
ALTER TABLE "spend_caps" ADD CONSTRAINT "spend_caps_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "billing_notices" ADD CONSTRAINT "billing_notices_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "meter_event_outbox" ADD CONSTRAINT "meter_event_outbox_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;
