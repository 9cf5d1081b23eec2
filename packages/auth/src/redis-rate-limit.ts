import type { BetterAuthRateLimitStorage } from "better-auth";
import type { Redis } from "ioredis";

// One atomic step per request: count it in the current window, and refuse past the maximum.
// A fixed window per key (the key expires when the window ends), shared by every web process.
const CONSUME = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count > tonumber(ARGV[2]) then return {0, redis.call('PTTL', KEYS[1])} end
return {1, 0}`;

export function redisRateLimitStorage(redis: Redis, keyPrefix: string): BetterAuthRateLimitStorage {
  return {
    async consume(key, rule) {
      const [allowed, ttlMs] = (await redis.eval(
        CONSUME,
        1,
        `${keyPrefix}auth-rate:${key}`,
        String(rule.window * 1000),
        String(rule.max),
      )) as [number, number];
      return allowed === 1
        ? { allowed: true, retryAfter: null }
        : { allowed: false, retryAfter: Math.max(1, Math.ceil(ttlMs / 1000)) };
    },
  };
}
