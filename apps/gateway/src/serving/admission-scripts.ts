// The Lua scripts behind RequestAdmission: a lease of admissions (the plan's token bucket and
// monthly caps from @kiln/metering, the spend cap from @kiln/billing, checked and taken together),
// the return of a lease's unused part, and a batch of usage events with their compute charge.
import { SPEND_CAP_CHECK_LUA } from "@kiln/billing";
import { QUOTA_CHECK_LUA, USAGE_BATCH_FIELD, USAGE_BATCH_ID_FIELD } from "@kiln/metering";
import { defineScript } from "./script-connection.ts";

/**
 * Admits `need` requests and leases up to `extra` more for the gateway to spend locally, or takes
 * nothing. Every check passes for the first request or nothing is taken (a refused request consumes
 * nothing); then as many as fit are granted, never past the bucket's tokens, the month's request
 * cap or the spend cap, which count the whole lease (its unused part is given back, see RETURN).
 * The leased extra takes at most half of the tokens left after `need`, so gateways sharing one bucket
 * each get a share, and stops short of the month's compute cap by the estimated compute per request.
 *
 * KEYS: quota bucket, month's requests, month's compute-ms, spend limits.
 * ARGV: rate, burst, monthly request cap (-1 none), monthly compute-ms cap (-1 none), seconds to the
 *       month's end, now (ms), spend usage key prefix, need, extra, compute-ms per request (estimate).
 * Returns {0, projected, cap, periodStart, granted} (granted may be less than need: the rest are
 *         asked for again, and refused for the reason that stopped them); {1, waitMs} rate;
 *         {2} / {3} monthly caps; {4, projected, cap, periodStart} spend cap; {5} spend limits
 *         missing (load them and retry); {6} nothing to lease (need 0 and no tokens to spare).
 */
export const LEASE = defineScript(
  `${QUOTA_CHECK_LUA}${SPEND_CAP_CHECK_LUA}
local code, a, now = kiln_quota_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if code ~= 0 then return {code, a} end
local need = tonumber(ARGV[8])
local n = math.min(need, math.floor(a))
if n == need then n = n + math.min(tonumber(ARGV[9]), math.floor((a - n) / 2)) end
local requestCap = tonumber(ARGV[3])
if requestCap >= 0 then n = math.min(n, requestCap - tonumber(redis.call('GET', KEYS[2]) or '0')) end
local computeCap = tonumber(ARGV[4])
if computeCap >= 0 and n > need then
  local left = computeCap - tonumber(redis.call('GET', KEYS[3]) or '0')
  n = math.max(need, math.min(n, math.floor(left / math.max(1, tonumber(ARGV[10])))))
end
if n <= 0 then return {6} end
local allowed, projected, cap, periodStart, usageKey = kiln_spend_check(KEYS[4], ARGV[6], ARGV[7], n)
if allowed == -1 then return {5, 0} end
if allowed == 0 then
  -- The projection grows with the count: find the most requests that stay within the cap.
  local lo, hi = 0, n - 1
  while lo < hi do
    local mid = math.ceil((lo + hi) / 2)
    if kiln_spend_check(KEYS[4], ARGV[6], ARGV[7], mid) == 1 then lo = mid else hi = mid - 1 end
  end
  if lo == 0 then
    allowed, projected, cap, periodStart = kiln_spend_check(KEYS[4], ARGV[6], ARGV[7], 1)
    return {4, projected, cap, periodStart}
  end
  n = lo
  allowed, projected, cap, periodStart, usageKey = kiln_spend_check(KEYS[4], ARGV[6], ARGV[7], n)
end
kiln_quota_take(KEYS[1], KEYS[2], a, now, ARGV[1], ARGV[2], ARGV[5], n)
kiln_spend_count(usageKey, n)
return {0, projected, cap, periodStart, n}
`,
  4,
);

/**
 * Gives back a lease's unused admissions: the tokens to the bucket (never above its burst; a bucket
 * that expired meanwhile is full anyway), the requests to the month's count and to the period's spend.
 * KEYS: quota bucket, month's requests, the period's spend usage hash. ARGV: count, burst.
 */
export const RETURN = defineScript(
  `
local n = tonumber(ARGV[1])
local tokens = redis.call('HGET', KEYS[1], 'tokens')
if tokens then redis.call('HSET', KEYS[1], 'tokens', math.min(tonumber(ARGV[2]), tonumber(tokens) + n)) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], n) end
if redis.call('HEXISTS', KEYS[3], 'requests') == 1 then redis.call('HINCRBY', KEYS[3], 'requests', -n) end
return 1
`,
  3,
);

/**
 * One organization's usage events of one month as one stream entry (a batch: USAGE_BATCH_FIELD), with their
 * compute charged to the month's quota and the period's spend.
 * KEYS: usage stream, month's compute-ms, spend limits.
 * ARGV: stream max length, compute ms for the quota (sum of each event's ceil, 0: none), seconds to
 *       the month's end, spend usage key prefix, compute ms for the spend cap (sum of each event's
 *       rounded ms, 0: none), the batch id (newUsageBatchId), the events (encodeUsageBatch).
 * Returns 0 when the spend limits were missing (the caller loads them and records the compute), else 1.
 */
export const METER = defineScript(
  `${SPEND_CAP_CHECK_LUA}
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', '${USAGE_BATCH_ID_FIELD}', ARGV[6], '${USAGE_BATCH_FIELD}', ARGV[7])
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]) + 86400)
end
if tonumber(ARGV[5]) > 0 then return kiln_spend_compute(KEYS[3], ARGV[4], ARGV[5]) end
return 1
`,
  3,
);
