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

// KEYS: bucket hash, month's request counter, month's compute-ms counter.
// ARGV: rate (tokens/s), burst, monthly request cap (-1: none), monthly compute-ms cap (-1: none),
//       seconds until the month ends (counter expiry and Retry-After).
// Returns {0} admitted, {1, ms until a token} rate limited, {2} request cap, {3} compute cap.
const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
if tokens < 1 then
  return {1, math.ceil((1 - tokens) * 1000 / rate)}
end
local requestCap = tonumber(ARGV[3])
if requestCap >= 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= requestCap then
  return {2, 0}
end
local computeCap = tonumber(ARGV[4])
if computeCap >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= computeCap then
  return {3, 0}
end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]) + 86400)
return {0, 0}
`;

const monthOf = (date: Date) => `${date.getUTCFullYear()}${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
const secondsToMonthEnd = (date: Date) =>
  Math.max(1, Math.ceil((Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) - date.getTime()) / 1000));

export const quotaKeys = (prefix: string, orgId: string, now: Date) => ({
  bucket: `${prefix}quota:${orgId}:bucket`,
  monthRequests: `${prefix}quota:${orgId}:${monthOf(now)}:requests`,
  monthComputeMs: `${prefix}quota:${orgId}:${monthOf(now)}:compute-ms`,
});

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
    const { limits } = plan;
    const toMonthEnd = secondsToMonthEnd(now);
    const [code, waitMs] = await this.#admit(
      keys.bucket,
      keys.monthRequests,
      keys.monthComputeMs,
      limits.requestsPerSecond,
      limits.burstRequests,
      limits.monthlyRequests ?? -1,
      limits.monthlyComputeSeconds === null ? -1 : limits.monthlyComputeSeconds * 1000,
      toMonthEnd,
    );
    switch (code) {
      case 0:
        return { admitted: true };
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
