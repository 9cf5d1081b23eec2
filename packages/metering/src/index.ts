// @kiln/metering: usage events, exactly-once hourly rollups, and real-time plan quotas.

export { latencyPercentile } from "./percentiles.ts";
export { type AdmissionResult, QuotaEnforcer, quotaKeys } from "./quotas.ts";
export {
  AGGREGATOR_GROUP,
  type AggregatorOptions,
  latencyBucketIndex,
  RECEIPT_RETENTION_MS,
  UsageAggregator,
} from "./usage-aggregator.ts";
export {
  decodeUsageEvent,
  encodeUsageEvent,
  LATENCY_BUCKETS_MS,
  recordUsage,
  recordUsageIn,
  type UsageEvent,
  usageStreamKey,
} from "./usage-event.ts";
export { type UsageTotals, usageReport } from "./usage-report.ts";
