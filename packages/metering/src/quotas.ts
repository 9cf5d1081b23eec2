// Real-time plan quotas in Redis: one Lua script per request checks and takes a token from the
// organization's bucket (requests per second with a burst) and checks the month's request and
// compute-second caps, in one round trip and atomically across every gateway.
import type { Plan } from "@kiln/plans";
import type { ChainableCommander, Redis } from "ioredis";

export type AdmissionResult =
  | { admitted: true }
  | {
      admitted: false;
      reason: "rate" | "monthly-requests" | "monthly-compute";
      retryAfterSeconds: number;
      message: string;
    };

/**
 * The plan-quota check as Lua functions, for scripts that admit a request in one round trip (the
 * gateway's admission script also checks the spend cap before taking anything).
 * `kiln_quota_check(bucket, monthRequests, monthComputeMs, rate, burst, requestCap, computeCap)`
 * returns `0, tokens, now` when the request may pass, `1, ms until a token` when rate limited,
 * `2` at the month's request cap, `3` at its compute cap; it writes nothing.
 * `kiln_quota_take(bucket, monthRequests, tokens, now, rate, burst, secondsToMonthEnd[, n])` takes
 * the token and counts the request (n tokens and requests when given: a gateway's lease).
 */
export const QUOTA_CHECK_LUA = `
local function kiln_quota_check(bucketKey, requestsKey, computeKey, rate, burst, requestCap, computeCap)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  rate = tonumber(rate)
  burst = tonumber(burst)
  local bucket = redis.call('HMGET', bucketKey, 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  if tokens < 1 then
    return 1, math.ceil((1 - tokens) * 1000 / rate)
  end
  requestCap = tonumber(requestCap)
  if requestCap >= 0 and tonumber(redis.call('GET', requestsKey) or '0') >= requestCap then
    return 2, 0
  end
  computeCap = tonumber(computeCap)
  if computeCap >= 0 and tonumber(redis.call('GET', computeKey) or '0') >= computeCap then
    return 3, 0
  end
  return 0, tokens, now
end
local function kiln_quota_take(bucketKey, requestsKey, tokens, now, rate, burst, toMonthEnd, n)
  n = tonumber(n or 1)
  redis.call('HSET', bucketKey, 'tokens', tokens - n, 'at', now)
  redis.call('PEXPIRE', bucketKey, math.ceil(tonumber(burst) / tonumber(rate) * 1000) + 1000)
  redis.call('INCRBY', requestsKey, n)
  redis.call('EXPIRE', requestsKey, tonumber(toMonthEnd) + 86400)
end
`;

// KEYS: bucket hash, month's request counter, month's compute-ms counter.
// ARGV: rate (tokens/s), burst, monthly request cap (-1: none), monthly compute-ms cap (-1: none),
//       seconds until the month ends (counter expiry and Retry-After).
// Returns {0} admitted, {1, ms until a token} rate limited, {2} request cap, {3} compute cap.
const ADMIT_SCRIPT = `${QUOTA_CHECK_LUA}
local code, a, now = kiln_quota_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if code ~= 0 then return {code, a} end
kiln_quota_take(KEYS[1], KEYS[2], a, now, ARGV[1], ARGV[2], ARGV[5])
return {0, 0}
`;

export const monthOf = (date: Date) => `${date.getUTCFullYear()}${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
export const secondsToMonthEnd = (date: Date) =>
  Math.max(1, Math.ceil((Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) - date.getTime()) / 1000));

export const quotaKeys = (prefix: string, orgId: string, now: Date) => ({
  bucket: `${prefix}quota:${orgId}:bucket`,
  monthRequests: `${prefix}quota:${orgId}:${monthOf(now)}:requests`,
  monthComputeMs: `${prefix}quota:${orgId}:${monthOf(now)}:compute-ms`,
});

/**
 * The plan's limits as kiln_quota_check takes them after its three keys: rate, burst, monthly
 * request cap and monthly compute-ms cap (-1: none).
 */
export const quotaLimitArgs = ({ limits }: Plan): [number, number, number, number] => [
  limits.requestsPerSecond,
  limits.burstRequests,
  limits.monthlyRequests ?? -1,
  limits.monthlyComputeSeconds === null ? -1 : limits.monthlyComputeSeconds * 1000,
];

/** The refusal for a quota script's code (1 rate, 2 monthly requests, 3 monthly compute). */
export function quotaRefusal(
  code: number,
  waitMs: number,
  plan: Plan,
  toMonthEnd: number,
): Extract<AdmissionResult, { admitted: false }> {
  const { limits } = plan;
  switch (code) {
    case 1:
      return {
        admitted: false,
        reason: "rate",
        retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
        message: `rate limit of ${limits.requestsPerSecond} requests/second (burst ${limits.burstRequests}) on the ${plan.name} plan exceeded`,
      };
    case 2:
      return {
        admitted: false,
        reason: "monthly-requests",
        retryAfterSeconds: toMonthEnd,
        message: `monthly quota of ${limits.monthlyRequests} requests on the ${plan.name} plan is used up`,
      };
    default:
      return {
        admitted: false,
        reason: "monthly-compute",
        retryAfterSeconds: toMonthEnd,
        message: `monthly quota of ${limits.monthlyComputeSeconds} compute-seconds on the ${plan.name} plan is used up`,
      };
  }
}

type AdmitCommand = (...args: (string | number)[]) => Promise<[number, number]>;

export class QuotaEnforcer {
  readonly #admit: AdmitCommand;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    // EVALSHA with a fallback to EVAL: the script travels once per connection, not per request.
    if (!("kilnAdmit" in redis)) redis.defineCommand("kilnAdmit", { numberOfKeys: 3, lua: ADMIT_SCRIPT });
    this.#admit = (redis as unknown as { kilnAdmit: AdmitCommand }).kilnAdmit.bind(redis);
  }

  async admit(orgId: string, plan: Plan, now = new Date()): Promise<AdmissionResult> {
    const keys = quotaKeys(this.prefix, orgId, now);
    const toMonthEnd = secondsToMonthEnd(now);
    const [code, waitMs] = await this.#admit(
      keys.bucket,
      keys.monthRequests,
      keys.monthComputeMs,
      ...quotaLimitArgs(plan),
      toMonthEnd,
    );
    return code === 0 ? { admitted: true } : quotaRefusal(code, waitMs, plan, toMonthEnd);
  }

  /** Charges an answered request's compute time to the month (checked by the next admission). */
  async chargeCompute(orgId: string, computeMs: number, now = new Date()): Promise<void> {
    await this.chargeComputeIn(this.redis.multi(), orgId, computeMs, now).exec();
  }

  /** The same, added to a caller's transaction (the gateway sends it with the usage event). */
  chargeComputeIn<T extends ChainableCommander>(tx: T, orgId: string, computeMs: number, now = new Date()): T {
    const key = quotaKeys(this.prefix, orgId, now).monthComputeMs;
    tx.incrby(key, Math.ceil(computeMs)).expire(key, secondsToMonthEnd(now) + 86_400);
    return tx;
  }

  /** What is used this month, for the dashboard. */
  async usage(orgId: string, now = new Date()): Promise<{ requests: number; computeSeconds: number }> {
    const keys = quotaKeys(this.prefix, orgId, now);
    const [requests, computeMs] = await this.redis.mget(keys.monthRequests, keys.monthComputeMs);
    return { requests: Number(requests ?? 0), computeSeconds: Number(computeMs ?? 0) / 1000 };
  }
}
