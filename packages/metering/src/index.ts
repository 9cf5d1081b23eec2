// @kiln/metering: usage events, exactly-once hourly rollups, and real-time plan quotas.

export { latencyPercentile } from "./percentiles.ts";
export {
  type AdmissionResult,
  monthOf,
  QUOTA_CHECK_LUA,
  QuotaEnforcer,
  quotaKeys,
  quotaLimitArgs,
  quotaRefusal,
  secondsToMonthEnd,
} from "./quotas.ts";
export {
  AGGREGATOR_GROUP,
  type AggregatorOptions,
  latencyBucketIndex,
  RECEIPT_RETENTION_MS,
  UsageAggregator,
} from "./usage-aggregator.ts";
export {
  decodeUsageEntry,
  decodeUsageEvent,
  encodeUsageBatch,
  encodeUsageEvent,
  LATENCY_BUCKETS_MS,
  newUsageBatchId,
  recordUsage,
  recordUsageBatch,
  recordUsageIn,
  USAGE_BATCH_FIELD,
  USAGE_BATCH_ID_FIELD,
  USAGE_EVENT_FIELDS,
  USAGE_STREAM_MAXLEN,
  type UsageEntry,
  type UsageEvent,
  usageEventValues,
  usageStreamKey,
} from "./usage-event.ts";
export { type UsageTotals, usageReport } from "./usage-report.ts";
