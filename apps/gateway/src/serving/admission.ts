// The gateway's two Redis steps per request, each one round trip:
// - admission: the plan's token bucket and monthly caps (@kiln/metering) and the spend cap
//   (@kiln/billing) in one Lua script that takes nothing unless every check passes, so a request
//   refused for any reason consumes no token, no monthly request and no spend;
// - metering: the usage event (XADD), the month's compute charge and the period's spend compute in
//   one Lua script, queued as the answer is written; under load it is sent with the next admission
//   (held at most 2 ms), otherwise at once (see `meter`).
// Both scripts go over the gateway's ScriptConnection (EVALSHA, one write per event-loop turn);
// the rare companions (loading spend limits, recording notices) use the ioredis connection.

import {
  recordComputeUsage,
  recordSpendCapNotices,
  refreshSpendLimits,
  SPEND_CAP_CHECK_LUA,
  type SpendCapDecision,
  type SpendCapDeps,
  spendCapKeys,
  spendCapThresholdsReached,
} from "@kiln/billing";
import type { PrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import {
  QUOTA_CHECK_LUA,
  quotaKeys,
  quotaRefusal,
  secondsToMonthEnd,
  USAGE_EVENT_FIELDS,
  USAGE_STREAM_MAXLEN,
  type UsageEvent,
  usageEventValues,
  usageStreamKey,
} from "@kiln/metering";
import type { Plan } from "@kiln/plans";
import { ServingError } from "@kiln/serving";
import type { Redis } from "ioredis";
import { defineScript, type ScriptConnection } from "./script-connection.ts";

// KEYS: quota bucket, month's requests, month's compute-ms, spend limits.
// ARGV: rate, burst, monthly request cap (-1 none), monthly compute-ms cap (-1 none), seconds to the
//       month's end, now (ms), spend usage key prefix.
// Returns {0, projected, cap, periodStart} admitted; {1, waitMs} rate; {2} / {3} monthly caps;
//         {4, projected, cap, periodStart} spend cap; {5} spend limits missing (load them and retry).
const ADMIT = defineScript(
  `${QUOTA_CHECK_LUA}${SPEND_CAP_CHECK_LUA}
local code, a, now = kiln_quota_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if code ~= 0 then return {code, a} end
local allowed, projected, cap, periodStart, usageKey = kiln_spend_check(KEYS[4], ARGV[6], ARGV[7], 1)
if allowed == -1 then return {5, 0} end
if allowed == 0 then return {4, projected, cap, periodStart} end
kiln_quota_take(KEYS[1], KEYS[2], a, now, ARGV[1], ARGV[2], ARGV[5])
kiln_spend_count(usageKey, 1)
return {0, projected, cap, periodStart}
`,
  4,
);

// KEYS: usage stream, month's compute-ms, spend limits.
// ARGV: stream max length, compute ms for the quota (ceil, 0: none), seconds to the month's end,
//       spend usage key prefix, compute ms for the spend cap (rounded, 0: none), then the event's
//       field values in USAGE_EVENT_FIELDS order (the script adds the names: half the arguments).
// Returns 0 when the spend limits were missing (the caller loads them and records the compute), else 1.
const METER = defineScript(
  `${SPEND_CAP_CHECK_LUA}
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', ${USAGE_EVENT_FIELDS.map((f, i) => `'${f}', ARGV[${6 + i}]`).join(", ")})
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]) + 86400)
end
if tonumber(ARGV[5]) > 0 then return kiln_spend_compute(KEYS[3], ARGV[4], ARGV[5]) end
return 1
`,
  3,
);

/** One organization's Redis keys for the current month (quota, spend cap), built once per month. */
interface OrgKeys {
  /** The UTC month the keys are for: [monthStart, monthEnd) in ms. */
  monthStart: number;
  monthEnd: number;
  bucket: string;
  monthRequests: string;
  monthComputeMs: string;
  spendLimits: string;
  spendUsagePrefix: string;
}

/** secondsToMonthEnd for a month ending at `monthEnd` (ms). */
const secondsTo = (monthEnd: number, nowMs: number) => Math.max(1, Math.ceil((monthEnd - nowMs) / 1000));

/** How long an answered request's usage event may wait for an admission to travel with. */
const METER_FLUSH_MS = 2;
/** Held usage events that are sent at once without waiting. */
const METER_BATCH = 64;

export class RequestAdmission {
  readonly #spendDeps: SpendCapDeps;
  /** Spend notices already recorded by this process (recordSpendCapNotices is idempotent anyway). */
  readonly #noticed = new Set<string>();
  readonly #stream: string;
  /** Usage events answered but not yet sent (see meter). */
  readonly #held: { event: UsageEvent; resolve: () => void }[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #sending = new Set<Promise<void>>();
  /** Moving average of the time between admissions (ms), and when the last one was. */
  #admitGapMs = 1_000;
  #lastAdmitAt = 0;
  readonly #keys = new Map<string, OrgKeys>();

  constructor(
    private readonly scripts: ScriptConnection,
    redis: Redis,
    prisma: PrismaClient,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.#spendDeps = { prisma, redis, redisKeyPrefix: prefix };
    this.#stream = usageStreamKey(prefix);
  }

  /** Quotas (429 + Retry-After) and the spend cap (402), checked and counted in one round trip. */
  async admit(orgId: string, plan: Plan): Promise<void> {
    // Held usage events leave in the same write, ahead of this admission.
    this.#flush();
    const at = performance.now();
    this.#admitGapMs = 0.8 * this.#admitGapMs + 0.2 * Math.min(at - this.#lastAdmitAt, 1_000);
    this.#lastAdmitAt = at;
    const now = new Date();
    let result = await this.#run(orgId, plan, now);
    if (result[0] === 5) {
      // The period's limits are not in Redis yet (first request, or the period rolled over).
      await refreshSpendLimits(this.#spendDeps, orgId);
      result = await this.#run(orgId, plan, now);
      if (result[0] === 5) throw new ServingError("INTERNAL", `spend limits of ${orgId} could not be loaded`);
    }
    const code = Number(result[0]);
    if (code === 1 || code === 2 || code === 3) {
      const refusal = quotaRefusal(code, Number(result[1]), plan, secondsToMonthEnd(now));
      throw new ServingError("RATE_LIMITED", refusal.message, refusal.retryAfterSeconds);
    }
    const cap = Number(result[2]);
    if (cap < 0) return;
    const decision: SpendCapDecision = { allowed: code === 0, projectedCents: Number(result[1]), capCents: cap };
    await this.#notices(orgId, decision, String(result[3]));
    if (!decision.allowed) {
      throw new ServingError(
        "PAYMENT_REQUIRED",
        `projected spend this period ($${(decision.projectedCents / 100).toFixed(2)}) would pass the organization's ` +
          `spend cap of $${(cap / 100).toFixed(2)}: raise the cap in the dashboard's billing page`,
      );
    }
  }

  /** The organization's keys for the month `now` falls in (the same strings quotaKeys and spendCapKeys build). */
  #keysOf(orgId: string, now: Date): OrgKeys {
    const nowMs = now.getTime();
    let keys = this.#keys.get(orgId);
    if (keys === undefined || nowMs >= keys.monthEnd || nowMs < keys.monthStart) {
      const quota = quotaKeys(this.prefix, orgId, now);
      const spend = spendCapKeys(this.prefix, orgId);
      keys = {
        monthStart: Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1),
        monthEnd: Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1),
        bucket: quota.bucket,
        monthRequests: quota.monthRequests,
        monthComputeMs: quota.monthComputeMs,
        spendLimits: spend.limits,
        spendUsagePrefix: spend.usagePrefix,
      };
      if (this.#keys.size >= 10_000) this.#keys.clear();
      this.#keys.set(orgId, keys);
    }
    return keys;
  }

  #run(orgId: string, plan: Plan, now: Date): Promise<(number | string)[]> {
    const keys = this.#keysOf(orgId, now);
    const { limits } = plan;
    const nowMs = now.getTime();
    return this.scripts.run(ADMIT, [
      keys.bucket,
      keys.monthRequests,
      keys.monthComputeMs,
      keys.spendLimits,
      limits.requestsPerSecond,
      limits.burstRequests,
      limits.monthlyRequests ?? -1,
      limits.monthlyComputeSeconds === null ? -1 : limits.monthlyComputeSeconds * 1000,
      secondsTo(keys.monthEnd, nowMs),
      nowMs,
      keys.spendUsagePrefix,
    ]) as Promise<(number | string)[]>;
  }

  /** 50/80/100 % notices: a Postgres write the first time a threshold is reached, nothing after. */
  async #notices(orgId: string, decision: SpendCapDecision, periodStart: string): Promise<void> {
    const reached = spendCapThresholdsReached(decision);
    if (reached.length === 0) return;
    const memo = `${orgId}:${periodStart}:${decision.capCents}:${reached.join(",")}`;
    if (this.#noticed.has(memo)) return;
    await recordSpendCapNotices(this.#spendDeps, orgId, decision, periodStart);
    if (this.#noticed.size > 10_000) this.#noticed.clear();
    this.#noticed.add(memo);
  }

  /**
   * Appends the usage event and charges its compute (quota and spend cap), in one script. Callers
   * send their answer without waiting for the reply. While admissions arrive at least every
   * METER_FLUSH_MS (on average), the command is held for at most that long and sent with the next
   * admission (the same corked write, ahead of it), so under load a usage event costs no
   * Redis write or read of its own; otherwise it leaves with this event-loop turn's writes as
   * before. close() sends whatever is held. An answered request is metered
   * once; a failure is logged (as it was when awaited: the answer is not withheld). The resolved
   * promise says the event reached Redis (or failed and was logged).
   */
  meter(event: UsageEvent): Promise<void> {
    return new Promise((resolve) => {
      this.#held.push({ event, resolve });
      // Held only while admissions come often enough that one will carry it; at a low rate the
      // event leaves with this turn's writes as it is (a timer would cost a wake-up of its own).
      if (this.#held.length >= METER_BATCH || this.#admitGapMs > METER_FLUSH_MS) this.#flush();
      else this.#flushTimer ??= setTimeout(this.#flushNow, METER_FLUSH_MS);
    });
  }

  readonly #flushNow = () => this.#flush();

  /** Sends every held usage event (they join this event-loop turn's corked write). */
  #flush(): void {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#held.length === 0) return;
    for (const { event, resolve } of this.#held.splice(0)) {
      const sent = this.#send(event);
      this.#sending.add(sent);
      void sent.then(() => {
        this.#sending.delete(sent);
        resolve();
      });
    }
  }

  /** Sends held usage events, waits for every one in flight, then closes the script connection. */
  async close(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#sending]);
    await this.scripts.close();
  }

  #send(event: UsageEvent): Promise<void> {
    const now = new Date(event.at);
    const computeMs = event.computeMs > 0 ? event.computeMs : 0;
    const keys = this.#keysOf(event.orgId, now);
    return (
      this.scripts.run(METER, [
        this.#stream,
        keys.monthComputeMs,
        keys.spendLimits,
        USAGE_STREAM_MAXLEN,
        Math.ceil(computeMs),
        secondsTo(keys.monthEnd, event.at),
        keys.spendUsagePrefix,
        Math.round(computeMs),
        ...usageEventValues(event),
      ]) as Promise<number>
    )
      .then(async (spendRecorded) => {
        // Spend limits not loaded yet: load them, then record the compute (rare: once per period).
        if (spendRecorded === 0) {
          await refreshSpendLimits(this.#spendDeps, event.orgId);
          await recordComputeUsage(this.#spendDeps, event.orgId, Math.round(computeMs));
        }
      })
      .catch((err) =>
        this.logger.error(
          { err, requestId: event.eventId, deploymentId: event.deploymentId },
          "usage event not recorded",
        ),
      );
  }
}
