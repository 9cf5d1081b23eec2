// One usage event per answered inference request, appended to a Redis stream by the gateway.
import { randomUUID } from "node:crypto";
import type { ChainableCommander, Redis } from "ioredis";

export interface UsageEvent {
  /** The request id: unique per answered request, and the key that makes counting idempotent. */
  eventId: string;
  orgId: string;
  deploymentId: string;
  /** Engine compute time charged to this request: its share of the batch's compute. */
  computeMs: number;
  /** This request's rows over the batch's rows (1 when it ran alone). */
  batchShare: number;
  bytesIn: number;
  bytesOut: number;
  /** success: the model answered; error: the request reached the model and failed there. */
  status: "success" | "error";
  /** Gateway latency from arrival to answer. */
  latencyMs: number;
  /** Epoch milliseconds when the request was answered; decides the rollup hour. */
  at: number;
}

/** Upper bounds (ms) of the latency buckets; one more bucket holds everything slower. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000] as const;

/** Approximate bound of the usage stream (XADD MAXLEN ~). */
export const USAGE_STREAM_MAXLEN = 1_000_000;

export const usageStreamKey = (prefix: string) => `${prefix}usage-events`;

/** The stream entry's field names, in order. */
export const USAGE_EVENT_FIELDS = [
  "eventId",
  "orgId",
  "deploymentId",
  "computeMs",
  "batchShare",
  "bytesIn",
  "bytesOut",
  "status",
  "latencyMs",
  "at",
] as const;

export function encodeUsageEvent(event: UsageEvent): string[] {
  return USAGE_EVENT_FIELDS.flatMap((f) => [f, String(event[f])]);
}

/** The field values alone, in USAGE_EVENT_FIELDS order (for a script that supplies the names). */
export function usageEventValues(e: UsageEvent): (string | number)[] {
  return [
    e.eventId,
    e.orgId,
    e.deploymentId,
    e.computeMs,
    e.batchShare,
    e.bytesIn,
    e.bytesOut,
    e.status,
    e.latencyMs,
    e.at,
  ];
}

/**
 * A stream entry may carry many events (the gateway sends what it answered in a few milliseconds as
 * one entry): `batch` (the batch's id, `bat_…`, unique per batch) and `events` (a JSON array of each
 * event's values in USAGE_EVENT_FIELDS order). The aggregator's receipt for such an entry is the
 * batch id, for a single-event entry the event id: either way a receipt covers exactly the events
 * of one entry, all counted in the transaction that inserts it, so counting stays exactly once
 * with one receipt row per batch instead of one per event.
 */
export const USAGE_BATCH_ID_FIELD = "batch";
export const USAGE_BATCH_FIELD = "events";

export const newUsageBatchId = () => `bat_${randomUUID()}`;

export function encodeUsageBatch(events: readonly UsageEvent[]): string {
  return JSON.stringify(events.map(usageEventValues));
}

/** One stream entry's events and the id of its receipt (the batch id, or the single event's id). */
export interface UsageEntry {
  receiptId: string;
  events: UsageEvent[];
}

/** Field name -> value of a stream entry's flat [name, value, ...] list. */
function fieldMap(fields: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
  return map;
}

/** Where each field's value sits in a batch row (USAGE_EVENT_FIELDS order). */
const AT = Object.fromEntries(USAGE_EVENT_FIELDS.map((f, i) => [f, i])) as Record<
  (typeof USAGE_EVENT_FIELDS)[number],
  number
>;

/**
 * An event from its fields' values in USAGE_EVENT_FIELDS order (missing ones empty or 0). Read by
 * position: the aggregator decodes every event of every batch, so no lookup or closure per field.
 */
function eventFromRow(row: readonly unknown[]): UsageEvent {
  return {
    eventId: String(row[AT.eventId] ?? ""),
    orgId: String(row[AT.orgId] ?? ""),
    deploymentId: String(row[AT.deploymentId] ?? ""),
    computeMs: Number(row[AT.computeMs] ?? 0),
    batchShare: Number(row[AT.batchShare] ?? 0),
    bytesIn: Number(row[AT.bytesIn] ?? 0),
    bytesOut: Number(row[AT.bytesOut] ?? 0),
    status: row[AT.status] === "error" ? "error" : "success",
    latencyMs: Number(row[AT.latencyMs] ?? 0),
    at: Number(row[AT.at] ?? 0),
  };
}

/** An event from a single-event entry's fields, by name. */
const eventFromFields = (map: Map<string, string>): UsageEvent =>
  eventFromRow(USAGE_EVENT_FIELDS.map((f) => map.get(f)));

export function decodeUsageEntry(fields: string[]): UsageEntry {
  const map = fieldMap(fields);
  const batchId = map.get(USAGE_BATCH_ID_FIELD);
  if (batchId === undefined) {
    const event = eventFromFields(map);
    return { receiptId: event.eventId, events: [event] };
  }
  const rows = JSON.parse(map.get(USAGE_BATCH_FIELD) ?? "[]") as unknown[][];
  return { receiptId: batchId, events: rows.map(eventFromRow) };
}

export function decodeUsageEvent(fields: string[]): UsageEvent {
  return eventFromFields(fieldMap(fields));
}

/** Appends the event; the stream is trimmed approximately so it cannot grow without bound. */
export async function recordUsage(redis: Redis, prefix: string, event: UsageEvent): Promise<void> {
  await recordUsageIn(redis.multi(), prefix, event).exec();
}

/** Appends many events as one stream entry (see USAGE_BATCH_FIELD). */
export async function recordUsageBatch(
  redis: Redis,
  prefix: string,
  events: readonly UsageEvent[],
  batchId = newUsageBatchId(),
): Promise<void> {
  await redis.xadd(
    usageStreamKey(prefix),
    "MAXLEN",
    "~",
    String(USAGE_STREAM_MAXLEN),
    "*",
    USAGE_BATCH_ID_FIELD,
    batchId,
    USAGE_BATCH_FIELD,
    encodeUsageBatch(events),
  );
}

/** The same, added to a caller's transaction, so metering costs one round trip with its companions. */
export function recordUsageIn<T extends ChainableCommander>(tx: T, prefix: string, event: UsageEvent): T {
  tx.xadd(usageStreamKey(prefix), "MAXLEN", "~", String(USAGE_STREAM_MAXLEN), "*", ...encodeUsageEvent(event));
  return tx;
}
