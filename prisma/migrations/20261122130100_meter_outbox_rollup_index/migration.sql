-- CreateIndex
CREATE INDEX "meter_event_outbox_usageRollupId_idx" ON "meter_event_outbox"("usageRollupId");
