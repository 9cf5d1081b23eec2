import { newId } from "@kiln/db";
import Stripe from "stripe";
import type { BillingDeps } from "./deps.ts";
import { nowOf } from "./deps.ts";

/**
 * Usage reporting to Stripe Billing meters through an outbox.
 *
 * 1. `enqueueMeterEvents` turns each closed hourly UsageRollup of an organization with a Stripe customer
 *    into outbox rows (one per meter with a non-zero amount), identified by rollup and meter; usage
 *    that reaches the rollup later is queued as the difference, identified by the total it brings the
 *    meter to. The insert ignores rows that already exist, so enqueueing again never duplicates.
 * 2. `sendDueMeterEvents` claims due rows (pending, or left "sending" by a crash once their send
 *    timeout passed), sends each with its identifier, and records the outcome. Stripe refuses a
 *    second event with an identifier it already has, which here means the first send landed: the row
 *    is recorded as sent. So a crash between Stripe's answer and Kiln's record re-sends the same
 *    identifier and Stripe still counts the usage once; an error leaves the row pending with
 *    exponential backoff; nothing is deleted before Stripe has it.
 * Stripe deduplicates identifiers for at least 24 hours and accepts timestamps from the past 35 days,
 * so a row that could only be re-sent outside those windows is marked failed for a person to
 * reconcile instead of risking a double count (or a certain refusal).
 */

const SEND_TIMEOUT_MS = 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;
const BASE_BACKOFF_MS = 30_000;
/** Resend after a crash only while Stripe's identifier deduplication (24 h) certainly holds. */
const DEDUPE_WINDOW_MS = 23 * 3600_000;
/** Stripe's window is 35 days; keep a day's margin for clock skew and slow retries. */
const TIMESTAMP_WINDOW_MS = 34 * 24 * 3600_000;
const HOUR_MS = 3600_000;

export type MeterKind = "requests" | "compute_seconds";

/**
 * The meter event identifier of a rollup's usage on one meter: the same on every send. Usage that
 * reaches a rollup after it was queued (a late usage event) is queued as a further event whose
 * identifier also names the rollup's cumulative total it brings the meter to, so it too is the same
 * on every send.
 */
export function meterEventIdentifier(usageRollupId: string, meter: MeterKind, cumulativeTotal?: bigint): string {
  return cumulativeTotal === undefined
    ? `kiln:${usageRollupId}:${meter}`
    : `kiln:${usageRollupId}:${meter}:${cumulativeTotal}`;
}

/** Milliseconds as decimal seconds ("12.345"), exactly, for payload.value. */
export function millisecondsToSecondsValue(ms: bigint): string {
  const whole = ms / 1000n;
  const fraction = ms % 1000n;
  return fraction === 0n ? String(whole) : `${whole}.${String(fraction).padStart(3, "0").replace(/0+$/, "")}`;
}

/** The inverse of millisecondsToSecondsValue. */
export function secondsValueToMilliseconds(value: string): bigint {
  const [whole = "0", fraction = ""] = value.split(".");
  return BigInt(whole) * 1000n + BigInt(fraction.padEnd(3, "0").slice(0, 3) || "0");
}

type RollupToReport = {
  id: string;
  orgId: string;
  hour: Date;
  requests: bigint;
  gpuMilliseconds: bigint;
  stripeCustomerId: string;
};

/**
 * Queues the usage of closed hours that is not queued yet: a rollup's whole amounts the first time,
 * and the difference when a late usage event grew it since. Returns how many outbox rows were created.
 * A rollup is marked reported once everything it holds was sent.
 */
export async function enqueueMeterEvents(deps: Pick<BillingDeps, "prisma" | "config" | "now">): Promise<number> {
  const now = nowOf(deps);
  const closedBefore = new Date(now.getTime() - HOUR_MS);
  const rollups = await deps.prisma.$queryRaw<RollupToReport[]>`
    SELECT r."id", r."orgId", r."hour", r."requests", r."gpuMilliseconds", s."stripeCustomerId"
    FROM "usage_rollups" r
    JOIN "subscriptions" s ON s."orgId" = r."orgId"
    WHERE r."hour" <= ${closedBefore}
      -- Both times are the database's clock. The margin covers an aggregator transaction that began
      -- before the rollup was last marked and committed after: its updatedAt is its start time.
      AND (r."reportedAt" IS NULL OR r."updatedAt" > r."reportedAt" - interval '5 minutes')
    ORDER BY r."hour"
    LIMIT 1000`;
  if (rollups.length === 0) return 0;
  const queued = await deps.prisma.meterEventOutbox.findMany({
    where: { usageRollupId: { in: rollups.map((r) => r.id) } },
    select: { usageRollupId: true, identifier: true, value: true, status: true },
  });
  const rows = rollups.flatMap((rollup) => {
    const mine = queued.filter((q) => q.usageRollupId === rollup.id);
    const queuedOf = (meter: MeterKind) =>
      mine
        .filter((q) => q.identifier.split(":")[2] === meter)
        .reduce((sum, q) => sum + (meter === "requests" ? BigInt(q.value) : secondsValueToMilliseconds(q.value)), 0n);
    // The event's time is the end of the hour it sums (minus a second, so it stays inside that hour).
    const timestamp = new Date(rollup.hour.getTime() + HOUR_MS - 1000);
    const tooOld = now.getTime() - timestamp.getTime() > TIMESTAMP_WINDOW_MS;
    const state = tooOld
      ? { status: "failed" as const, nextAttemptAt: null, lastError: "usage is older than Stripe's 35-day window" }
      : {};
    const meters = [
      { meter: "requests" as const, eventName: deps.config.STRIPE_METER_REQUESTS, total: rollup.requests },
      {
        meter: "compute_seconds" as const,
        eventName: deps.config.STRIPE_METER_COMPUTE_SECONDS,
        total: rollup.gpuMilliseconds,
      },
    ];
    return meters.flatMap(({ meter, eventName, total }) => {
      const already = queuedOf(meter);
      if (total <= already) return [];
      const delta = total - already;
      return [
        {
          id: newId("mev"),
          orgId: rollup.orgId,
          usageRollupId: rollup.id,
          stripeCustomerId: rollup.stripeCustomerId,
          eventName,
          identifier: meterEventIdentifier(rollup.id, meter, already === 0n ? undefined : total),
          value: meter === "requests" ? String(delta) : millisecondsToSecondsValue(delta),
          timestamp,
          ...state,
        },
      ];
    });
  });
  const { count } =
    rows.length > 0
      ? await deps.prisma.meterEventOutbox.createMany({ data: rows, skipDuplicates: true })
      : { count: 0 };
  await markReported(deps, rollups);
  return count;
}

/**
 * Marks rollups reported (database time, like the aggregator's updatedAt) whose every queued event is
 * sent and whose amounts are still those queued, compared in the same statement so that usage
 * arriving meanwhile keeps the rollup due. A rollup is looked at again for a few minutes after its
 * last change, and each look moves reportedAt on.
 */
async function markReported(deps: Pick<BillingDeps, "prisma">, rollups: RollupToReport[]): Promise<void> {
  for (const rollup of rollups) {
    await deps.prisma.$executeRaw`
      UPDATE "usage_rollups" r SET "reportedAt" = now()
      WHERE r."id" = ${rollup.id}
        AND r."requests" = ${rollup.requests} AND r."gpuMilliseconds" = ${rollup.gpuMilliseconds}
        AND NOT EXISTS (SELECT 1 FROM "meter_event_outbox" o WHERE o."usageRollupId" = r."id" AND o."status" <> 'sent')
        AND (SELECT COALESCE(SUM(o."value"::numeric), 0) FROM "meter_event_outbox" o
             WHERE o."usageRollupId" = r."id" AND split_part(o."identifier", ':', 3) = 'requests') = r."requests"
        AND (SELECT COALESCE(SUM(o."value"::numeric), 0) * 1000 FROM "meter_event_outbox" o
             WHERE o."usageRollupId" = r."id" AND split_part(o."identifier", ':', 3) = 'compute_seconds')
            = r."gpuMilliseconds"`;
  }
}

export type SendReport = { sent: number; retrying: number; failed: number };

export type SendOptions = {
  limit?: number;
  /** Fault injection for tests: runs after Stripe accepted an event, before Kiln records it. */
  afterStripeAccepted?: (identifier: string) => void | Promise<void>;
};

type Claimed = {
  id: string;
  usageRollupId: string;
  eventName: string;
  identifier: string;
  stripeCustomerId: string;
  value: string;
  timestamp: Date;
  attempts: number;
  createdAt: Date;
  wasSending: boolean;
};

/** Sends the outbox rows that are due. Safe to run in several workers at once (rows are claimed). */
export async function sendDueMeterEvents(
  deps: Pick<BillingDeps, "prisma" | "stripe" | "now">,
  options: SendOptions = {},
): Promise<SendReport> {
  const now = nowOf(deps);
  const claimed = await claimDue(deps, now, options.limit ?? 100);
  const report: SendReport = { sent: 0, retrying: 0, failed: 0 };
  for (const row of claimed) {
    const outcome = await sendOne(deps, row, now, options);
    report[outcome] += 1;
  }
  return report;
}

async function claimDue(deps: Pick<BillingDeps, "prisma">, now: Date, limit: number): Promise<Claimed[]> {
  // One statement: lock due rows (skipping those another worker holds), mark them sending, and push
  // their next attempt past the send timeout, so a crash mid-send makes them due again by themselves.
  return deps.prisma.$queryRaw<Claimed[]>`
    WITH due AS (
      SELECT "id", "status" FROM "meter_event_outbox"
      WHERE "nextAttemptAt" <= ${now} AND "status" IN ('pending', 'sending')
      ORDER BY "nextAttemptAt"
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE "meter_event_outbox" o
    SET "status" = 'sending', "attempts" = o."attempts" + 1,
        "sendingSince" = COALESCE(o."sendingSince", ${now}),
        "nextAttemptAt" = ${new Date(now.getTime() + SEND_TIMEOUT_MS)}, "updatedAt" = ${now}
    FROM due
    WHERE o."id" = due."id"
    RETURNING o."id", o."usageRollupId", o."eventName", o."identifier", o."stripeCustomerId", o."value",
      o."timestamp", o."attempts", o."createdAt", (due."status" = 'sending') AS "wasSending"`;
}

async function sendOne(
  deps: Pick<BillingDeps, "prisma" | "stripe">,
  row: Claimed,
  now: Date,
  options: SendOptions,
): Promise<keyof SendReport> {
  if (now.getTime() - row.timestamp.getTime() > TIMESTAMP_WINDOW_MS) {
    return fail(deps, row, now, "usage is older than Stripe's 35-day window; reconcile by hand");
  }
  // A row whose earlier send may have reached Stripe can only be re-sent while Stripe would still
  // recognise the identifier; beyond that a re-send could count the usage twice.
  if (row.wasSending && now.getTime() - row.createdAt.getTime() > DEDUPE_WINDOW_MS) {
    return fail(deps, row, now, "an earlier send's outcome is unknown and Stripe's 24-hour deduplication has lapsed");
  }
  try {
    await deps.stripe.billing.meterEvents.create({
      event_name: row.eventName,
      identifier: row.identifier,
      timestamp: Math.floor(row.timestamp.getTime() / 1000),
      payload: { stripe_customer_id: row.stripeCustomerId, value: row.value },
    });
  } catch (error) {
    if (isDuplicateIdentifier(error)) return markSent(deps, row, now);
    const retryable = !(error instanceof Stripe.errors.StripeInvalidRequestError) || row.attempts < 3;
    if (!retryable) return fail(deps, row, now, describe(error));
    const backoff = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (row.attempts - 1));
    await deps.prisma.meterEventOutbox.update({
      where: { id: row.id },
      data: { status: "pending", nextAttemptAt: new Date(now.getTime() + backoff), lastError: describe(error) },
    });
    return "retrying";
  }
  await options.afterStripeAccepted?.(row.identifier);
  return markSent(deps, row, now);
}

async function markSent(deps: Pick<BillingDeps, "prisma">, row: Claimed, now: Date): Promise<"sent"> {
  // The rollup itself is marked reported by the next enqueue run, which checks it did not grow since.
  await deps.prisma.meterEventOutbox.update({
    where: { id: row.id },
    data: { status: "sent", sentAt: now, nextAttemptAt: null, lastError: null },
  });
  return "sent";
}

async function fail(deps: Pick<BillingDeps, "prisma">, row: Claimed, now: Date, reason: string): Promise<"failed"> {
  await deps.prisma.meterEventOutbox.update({
    where: { id: row.id },
    data: { status: "failed", nextAttemptAt: null, lastError: reason, updatedAt: now },
  });
  return "failed";
}

/** Stripe's answer to an identifier it already holds: the usage is already counted. */
function isDuplicateIdentifier(error: unknown): boolean {
  return (
    error instanceof Stripe.errors.StripeInvalidRequestError &&
    (error.code === "duplicate_meter_event" || /already exists with identifier/i.test(error.message))
  );
}

function describe(error: unknown): string {
  if (error instanceof Stripe.errors.StripeError) return `${error.type}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
