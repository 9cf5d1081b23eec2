import type { PrismaClient } from "@kiln/db";
import { KilnError } from "@kiln/errors";
import { currentPlanId, type PlanId, planFor } from "@kiln/plans";
import type { Redis } from "ioredis";
import { type BillingPeriod, billingPeriodOf } from "./billing-period.ts";
import { nowOf } from "./deps.ts";
import { recordNotice } from "./notices.ts";

/**
 * Spend caps. The gateway asks `checkSpendCap` at admission; the answer comes from Redis in one
 * atomic script that projects the period's invoice (the plan's price plus overage on the usage so
 * far, this request included) and counts the request only when the projection stays within the cap.
 * Because check and count are one step, concurrent requests cannot all slip under the cap: once the
 * cap is reached, only requests admitted before it finish (their compute is recorded as they end).
 *
 * Redis holds, per organization, the limits (`billing:limits:<org>`: plan prices, allowance, cap,
 * period) written from Postgres by `refreshSpendLimits` whenever the plan or cap changes, and the
 * period's usage (`billing:usage:<org>:<periodStart>`), counted live and raised to the hourly
 * rollups' totals when those are newer (a Redis that lost its data cannot under-count for long).
 */

export type SpendCapDeps = { prisma: PrismaClient; redis: Redis; redisKeyPrefix: string; now?: () => Date };

export type SpendCapDecision = {
  allowed: boolean;
  /** The period's projected invoice in cents, counting this request. */
  projectedCents: number;
  /** The cap in cents, or null when the organization set none. */
  capCents: number | null;
};

const THRESHOLDS = [50, 80, 100] as const;
const USAGE_TTL_SECONDS = 40 * 24 * 3600;

/** Redis keys of the spend cap: the limits hash, and the prefix of the period's usage hash. */
export const spendCapKeys = (redisKeyPrefix: string, orgId: string) => ({
  limits: `${redisKeyPrefix}billing:limits:${orgId}`,
  usagePrefix: `${redisKeyPrefix}billing:usage:${orgId}:`,
});
const limitsKey = (deps: SpendCapDeps, orgId: string) => spendCapKeys(deps.redisKeyPrefix, orgId).limits;
const usageKeyPrefix = (deps: SpendCapDeps, orgId: string) => spendCapKeys(deps.redisKeyPrefix, orgId).usagePrefix;

/**
 * The spend-cap check as a Lua function, for scripts that admit a request in one round trip (the
 * gateway runs it inside its admission script together with the plan quotas):
 * `kiln_spend_check(limitsKey, nowMs, usageKeyPrefix, requests)` returns
 * `-1` when the limits are missing or stale, else `allowed (0|1), projectedCents, capCents or -1,
 * periodStart, usageKey`. It writes nothing; `SPEND_CAP_COUNT_LUA` counts an allowed request.
 * The arithmetic mirrors projectInvoice in @kiln/plans: integers only, compute in milliseconds.
 */
export const SPEND_CAP_CHECK_LUA = `
local function kiln_spend_check(limitsKey, nowMs, usagePrefix, n)
  local raw = redis.call('HGETALL', limitsKey)
  if #raw == 0 then return -1 end
  local l = {}
  for i = 1, #raw, 2 do l[raw[i]] = raw[i + 1] end
  if tonumber(nowMs) >= tonumber(l.periodEnd) then return -1 end
  local usageKey = usagePrefix .. l.periodStart
  local requests = tonumber(redis.call('HGET', usageKey, 'requests') or '0') + tonumber(n)
  local computeMs = tonumber(redis.call('HGET', usageKey, 'computeMs') or '0')
  local function over(used, included, rate, scale)
    local billable = used - included * scale
    if billable <= 0 or rate == 0 then return 0 end
    local perCent = 10000 * scale
    return math.floor((billable * rate + perCent / 2) / perCent)
  end
  local projected = tonumber(l.baseCents)
    + over(requests, tonumber(l.includedRequests), tonumber(l.requestRate), 1)
    + over(computeMs, tonumber(l.includedComputeSeconds), tonumber(l.computeRate), 1000)
  local cap = -1
  if l.capCents ~= '' then cap = tonumber(l.capCents) end
  if cap >= 0 and projected > cap then return 0, projected, cap, l.periodStart, usageKey end
  return 1, projected, cap, l.periodStart, usageKey
end
local function kiln_spend_count(usageKey, n)
  redis.call('HINCRBY', usageKey, 'requests', tonumber(n))
  redis.call('EXPIRE', usageKey, ${USAGE_TTL_SECONDS})
end
local function kiln_spend_compute(limitsKey, usagePrefix, ms)
  local periodStart = redis.call('HGET', limitsKey, 'periodStart')
  if not periodStart then return 0 end
  local usageKey = usagePrefix .. periodStart
  redis.call('HINCRBY', usageKey, 'computeMs', tonumber(ms))
  redis.call('EXPIRE', usageKey, ${USAGE_TTL_SECONDS})
  return 1
end
`;

// KEYS[1] limits; ARGV[1] now (ms), ARGV[2] usage key prefix, ARGV[3] requests to admit.
// Returns {-1} when the limits are missing or stale, else {allowed, projectedCents, capCents or -1, periodStart}.
const ADMIT_SCRIPT = `${SPEND_CAP_CHECK_LUA}
local allowed, projected, cap, periodStart, usageKey = kiln_spend_check(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if allowed == -1 then return {-1} end
if allowed == 1 then kiln_spend_count(usageKey, ARGV[3]) end
return {allowed, projected, cap, periodStart}
`;

// KEYS[1] limits; ARGV[1] usage key prefix, ARGV[2] milliseconds. Returns 0 when the limits are missing.
const RECORD_COMPUTE_SCRIPT = `${SPEND_CAP_CHECK_LUA}
return kiln_spend_compute(KEYS[1], ARGV[1], ARGV[2])
`;

// KEYS[1] usage key; ARGV[1] requests, ARGV[2] computeMs from the rollups: raise, never lower.
const RAISE_USAGE_SCRIPT = `
local fields = {'requests', 'computeMs'}
for i, field in ipairs(fields) do
  local current = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(ARGV[i]) > current then redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
redis.call('EXPIRE', KEYS[1], ${USAGE_TTL_SECONDS})
return 1
`;

/**
 * Admission for one request: counts it and allows it while the projected spend stays within the
 * organization's cap; `allowed: false` is the gateway's 402. Call it once per request.
 */
export async function checkSpendCap(deps: SpendCapDeps, orgId: string): Promise<SpendCapDecision> {
  const now = nowOf(deps);
  let result = await admit(deps, orgId, now);
  if (result[0] === -1) {
    await refreshSpendLimits(deps, orgId);
    result = await admit(deps, orgId, now);
    if (result[0] === -1) throw new KilnError("INTERNAL_SERVER_ERROR", `Spend limits of ${orgId} could not be loaded`);
  }
  const [allowed, projectedCents = 0, cap = -1, periodStart = ""] = result as [number, number?, number?, string?];
  const decision = { allowed: allowed === 1, projectedCents, capCents: cap < 0 ? null : cap };
  if (decision.capCents !== null) await recordSpendCapNotices(deps, orgId, decision, periodStart);
  return decision;
}

async function admit(deps: SpendCapDeps, orgId: string, now: Date): Promise<(number | string)[]> {
  return (await deps.redis.eval(
    ADMIT_SCRIPT,
    1,
    limitsKey(deps, orgId),
    String(now.getTime()),
    usageKeyPrefix(deps, orgId),
    "1",
  )) as (number | string)[];
}

/** Adds the compute time of a finished request to the period's projected spend. */
export async function recordComputeUsage(deps: SpendCapDeps, orgId: string, gpuMilliseconds: number): Promise<void> {
  if (!Number.isSafeInteger(gpuMilliseconds) || gpuMilliseconds < 0) {
    throw new KilnError("BAD_REQUEST", `gpuMilliseconds must be a non-negative integer, got ${gpuMilliseconds}`);
  }
  const args = [limitsKey(deps, orgId), usageKeyPrefix(deps, orgId), String(gpuMilliseconds)] as const;
  if ((await deps.redis.eval(RECORD_COMPUTE_SCRIPT, 1, ...args)) === 0) {
    await refreshSpendLimits(deps, orgId);
    await deps.redis.eval(RECORD_COMPUTE_SCRIPT, 1, ...args);
  }
}

type OrgBilling = { planId: PlanId; period: BillingPeriod; capCents: number | null };

/** The organization's plan, period and cap, from Postgres. */
export async function loadOrgBilling(
  deps: Pick<SpendCapDeps, "prisma">,
  orgId: string,
  now: Date,
): Promise<OrgBilling> {
  const [subscription, cap] = await Promise.all([
    deps.prisma.subscription.findUnique({ where: { orgId } }),
    deps.prisma.spendCap.findUnique({ where: { orgId } }),
  ]);
  const planId = currentPlanId(subscription, now);
  return {
    planId,
    // Free counts calendar months (as its quotas do), even while a canceled subscription's last period runs.
    period: billingPeriodOf(planId === "free" ? null : subscription, now),
    capCents: cap?.monthlyCapCents ?? null,
  };
}

/**
 * Writes the organization's limits to Redis from Postgres and raises the period's usage counters
 * to the rollups' totals. Called when a plan or cap changes, when the limits expire with the period,
 * and by the periodic billing job.
 */
export async function refreshSpendLimits(deps: SpendCapDeps, orgId: string): Promise<OrgBilling> {
  const now = nowOf(deps);
  const billing = await loadOrgBilling(deps, orgId, now);
  const plan = planFor(billing.planId);
  const key = limitsKey(deps, orgId);
  const rollups = await deps.prisma.usageRollup.aggregate({
    where: { orgId, hour: { gte: billing.period.start, lt: billing.period.end } },
    _sum: { requests: true, gpuMilliseconds: true },
  });
  await deps.redis
    .multi()
    .del(key)
    .hset(key, {
      plan: plan.id,
      periodStart: String(billing.period.start.getTime()),
      periodEnd: String(billing.period.end.getTime()),
      capCents: billing.capCents === null ? "" : String(billing.capCents),
      baseCents: String(plan.monthlyPriceCents),
      includedRequests: String(plan.included.requests),
      includedComputeSeconds: String(plan.included.computeSeconds),
      requestRate: String(plan.overage?.microDollarsPerRequest ?? 0),
      computeRate: String(plan.overage?.microDollarsPerComputeSecond ?? 0),
    })
    .pexpireat(key, billing.period.end.getTime())
    .eval(
      RAISE_USAGE_SCRIPT,
      1,
      `${usageKeyPrefix(deps, orgId)}${billing.period.start.getTime()}`,
      String(rollups._sum.requests ?? 0n),
      String(rollups._sum.gpuMilliseconds ?? 0n),
    )
    .exec();
  return billing;
}

/** The period's usage as counted in Redis (admitted requests, finished compute). */
export async function periodUsage(
  deps: SpendCapDeps,
  orgId: string,
  period: BillingPeriod,
): Promise<{ requests: number; computeSeconds: number }> {
  const usage = await deps.redis.hmget(
    `${usageKeyPrefix(deps, orgId)}${period.start.getTime()}`,
    "requests",
    "computeMs",
  );
  return { requests: Number(usage[0] ?? 0), computeSeconds: Number(usage[1] ?? 0) / 1000 };
}

/** Sets (or with null, removes) the organization's monthly spend cap. */
export async function setSpendCap(deps: SpendCapDeps, orgId: string, monthlyCapCents: number | null): Promise<void> {
  if (monthlyCapCents !== null && (!Number.isSafeInteger(monthlyCapCents) || monthlyCapCents < 0)) {
    throw new KilnError("BAD_REQUEST", `A spend cap is a whole number of cents, 0 or more; got ${monthlyCapCents}`);
  }
  if (monthlyCapCents === null) {
    await deps.prisma.spendCap.deleteMany({ where: { orgId } });
  } else {
    await deps.prisma.spendCap.upsert({
      where: { orgId },
      create: { orgId, monthlyCapCents },
      update: { monthlyCapCents },
    });
  }
  await refreshSpendLimits(deps, orgId);
}

/** The notice thresholds (percent of the cap) a decision has reached; empty when none. */
export function spendCapThresholdsReached(decision: SpendCapDecision): number[] {
  const cap = decision.capCents ?? 0;
  if (decision.capCents === null) return [];
  return THRESHOLDS.filter((t) =>
    t === 100 ? !decision.allowed || decision.projectedCents >= cap : decision.projectedCents * 100 >= cap * t,
  );
}

/**
 * Records the 50%, 80% and 100% notices the first time the projection reaches them in a period
 * (for a given cap). A Redis SET NX per threshold makes it idempotent across gateways; callers
 * that admit through their own script (the gateway) call it after an admission that reached one.
 */
export async function recordSpendCapNotices(
  deps: SpendCapDeps,
  orgId: string,
  decision: SpendCapDecision,
  periodStart: string,
): Promise<void> {
  const cap = decision.capCents ?? 0;
  const reached = spendCapThresholdsReached(decision);
  if (reached.length === 0) return;
  for (const threshold of reached) {
    const dedupeKey = `${periodStart}:${cap}:${threshold}`;
    const first = await deps.redis.set(
      `${deps.redisKeyPrefix}billing:notice:${orgId}:${dedupeKey}`,
      "1",
      "EX",
      USAGE_TTL_SECONDS,
      "NX",
    );
    if (first !== "OK") continue;
    const dollars = (cap / 100).toFixed(2);
    await recordNotice(deps.prisma, {
      orgId,
      kind: threshold === 50 ? "spend_cap_50" : threshold === 80 ? "spend_cap_80" : "spend_cap_100",
      dedupeKey,
      message:
        threshold === 100
          ? `Projected spend reached the $${dollars} spend cap: requests are refused (402) until the cap is raised or the period ends.`
          : `Projected spend passed ${threshold}% of the $${dollars} spend cap.`,
    });
  }
}
