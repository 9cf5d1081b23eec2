// The gateway's Redis steps per request, leased and batched so that under load most requests make
// none of their own:
// - admission: the plan's token bucket and monthly caps (@kiln/metering) and the spend cap
//   (@kiln/billing) in one Lua script (LEASE) that takes nothing unless every check passes, so a
//   request refused for any reason consumes no token, no monthly request and no spend. Requests of
//   one event-loop turn share one call; while an organization's demand on this gateway is high, the
//   call also leases admissions for the next LEASE_MS, spent here without Redis and given back
//   (RETURN) when unused. Leased admissions are counted in Redis (bucket, month, spend) as they are
//   taken, so no cap is ever passed, whatever several gateways do; at low rates nothing is leased and
//   every request runs the script as before.
// - metering: usage events, the month's compute charge and the period's spend compute in one Lua
//   script (METER) per organization and month, one stream entry per batch; under load the events
//   of up to METER_FLUSH_MS (or METER_BATCH events) travel together, otherwise each leaves with its
//   turn's write.
// The scripts go over the gateway's ScriptConnection (EVALSHA, one write per event-loop turn); the
// rare companions (loading spend limits, recording notices) use the ioredis connection.

import {
  recordComputeUsage,
  recordSpendCapNotices,
  refreshSpendLimits,
  type SpendCapDecision,
  type SpendCapDeps,
  spendCapKeys,
  spendCapThresholdsReached,
} from "@kiln/billing";
import type { PrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import {
  encodeUsageBatch,
  newUsageBatchId,
  quotaKeys,
  quotaLimitArgs,
  quotaRefusal,
  secondsToMonthEnd,
  USAGE_STREAM_MAXLEN,
  type UsageEvent,
  usageStreamKey,
} from "@kiln/metering";
import type { Plan } from "@kiln/plans";
import { ServingError } from "@kiln/serving";
import type { Redis } from "ioredis";
import { LEASE, METER, RETURN } from "./admission-scripts.ts";
import type { RespValue, ScriptConnection } from "./script-connection.ts";

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

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Already waited for the spend limits to be loaded once. */
  isRetry?: boolean;
}

/** One organization's admissions on this gateway: its leased pool, waiting requests and demand. */
interface OrgLease {
  orgId: string;
  /** The plan of the latest request (leases are asked for under it). */
  plan: Plan;
  /** Leased admissions not yet spent, usable until expiresAt (performance.now()). */
  tokens: number;
  expiresAt: number;
  /** Where the pool's admissions were counted (given back there). */
  takenIn: { keys: OrgKeys; usageKey: string; burst: number } | undefined;
  /** Requests waiting for this turn's LEASE call. */
  waiters: Waiter[];
  /** Requests refused while another of this gateway's leases was in flight: they wait for it. */
  parked: Waiter[];
  isScheduled: boolean;
  /** LEASE calls awaiting their reply, and whether one of them asked for extra admissions. */
  inFlight: number;
  isLeasing: boolean;
  /** Admissions counted per LEASE_MS window: the current one, and the one before. */
  windowStart: number;
  windowCount: number;
  lastWindowCount: number;
  expiry: NodeJS.Timeout | undefined;
}

/** secondsToMonthEnd for a month ending at `monthEnd` (ms). */
const secondsTo = (monthEnd: number, nowMs: number) => Math.max(1, Math.ceil((monthEnd - nowMs) / 1000));

/** How long leased admissions last here, and the window demand is measured over. */
const LEASE_MS = 20;
/** Below this many admissions per window (800/s at 20 ms) nothing is leased: one script per turn. */
const LEASE_MIN_DEMAND = 16;
/** The most admissions one call leases. */
const LEASE_MAX = 512;
/**
 * While usage events come at least every METER_HOLD_GAP_MS on average, each may wait up to
 * METER_FLUSH_MS for others to travel with (every Redis write wakes Redis and costs the gateway a
 * system call: under load these writes were a twentieth of the gateway's CPU at 2 ms).
 */
const METER_HOLD_GAP_MS = 2;
const METER_FLUSH_MS = 10;
/** Held usage events that are sent at once without waiting. */
const METER_BATCH = 256;

const ADMITTED = Promise.resolve();

export class RequestAdmission {
  readonly #spendDeps: SpendCapDeps;
  /** Spend notices already recorded by this process (recordSpendCapNotices is idempotent anyway). */
  readonly #noticed = new Set<string>();
  readonly #stream: string;
  /** Usage events answered but not yet sent (see meter), and the callers waiting for them to be sent. */
  #held: UsageEvent[] = [];
  #heldWaiters: (() => void)[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #isFlushScheduled = false;
  readonly #sending = new Set<Promise<void>>();
  /** Moving average of the time between usage events (ms), and when the last one was. */
  #meterGapMs = 1_000;
  #lastMeterAt = 0;
  /** Moving average of a request's compute (ms, rounded up): how much a lease may take near the compute cap. */
  #computeMsPerRequest = 1;
  readonly #keys = new Map<string, OrgKeys>();
  readonly #leases = new Map<string, OrgLease>();

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

  /**
   * Quotas (429 + Retry-After) and the spend cap (402): from this gateway's lease when it holds one,
   * else checked and counted in Redis with the turn's other requests of the organization.
   */
  admit(orgId: string, plan: Plan): Promise<void> {
    const admitted = this.admitNow(orgId, plan);
    return admitted === true ? ADMITTED : admitted;
  }

  /** admit, answering `true` at once (no promise) when this gateway's lease admits the request. */
  admitNow(orgId: string, plan: Plan): true | Promise<void> {
    const lease = this.#leaseOf(orgId, plan);
    const at = performance.now();
    if (at - lease.windowStart >= LEASE_MS) {
      lease.lastWindowCount = at - lease.windowStart < 2 * LEASE_MS ? lease.windowCount : 0;
      lease.windowStart = at;
      lease.windowCount = 0;
    }
    lease.windowCount++;
    if (lease.tokens > 0) {
      if (at < lease.expiresAt) {
        lease.tokens--;
        // Ask for the next lease before this one runs out, so requests rarely wait for Redis.
        if (lease.tokens * 4 < lease.lastWindowCount && lease.inFlight === 0) this.#schedule(lease);
        return true;
      }
      this.#giveBack(lease);
    }
    return new Promise((resolve, reject) => {
      lease.waiters.push({ resolve, reject });
      this.#schedule(lease);
    });
  }

  #leaseOf(orgId: string, plan: Plan): OrgLease {
    let lease = this.#leases.get(orgId);
    if (lease === undefined) {
      if (this.#leases.size >= 10_000) this.#dropIdleLeases();
      lease = {
        orgId,
        plan,
        tokens: 0,
        expiresAt: 0,
        takenIn: undefined,
        waiters: [],
        parked: [],
        isScheduled: false,
        inFlight: 0,
        isLeasing: false,
        windowStart: 0,
        windowCount: 0,
        lastWindowCount: 0,
        expiry: undefined,
      };
      this.#leases.set(orgId, lease);
    }
    lease.plan = plan;
    return lease;
  }

  #dropIdleLeases(): void {
    for (const [orgId, lease] of this.#leases) {
      if (lease.tokens === 0 && lease.inFlight === 0 && !lease.isScheduled && lease.waiters.length === 0) {
        clearTimeout(lease.expiry);
        this.#leases.delete(orgId);
      }
    }
  }

  /** Queues one LEASE call for the organization in this turn's write (its waiters, and a lease when busy). */
  #schedule(lease: OrgLease): void {
    if (lease.isScheduled) return;
    lease.isScheduled = true;
    this.scripts.beforeWrite(() => this.#requestLease(lease));
  }

  #requestLease(lease: OrgLease): void {
    lease.isScheduled = false;
    const waiters = lease.waiters.splice(0);
    const demand = lease.lastWindowCount >= LEASE_MIN_DEMAND ? Math.min(LEASE_MAX, lease.lastWindowCount) : 0;
    const extra = lease.inFlight === 0 ? Math.max(0, demand - lease.tokens) : 0;
    if (waiters.length === 0 && extra === 0) return;
    const now = new Date();
    const { plan } = lease;
    const isLeasing = extra > 0;
    lease.inFlight++;
    if (isLeasing) lease.isLeasing = true;
    const done = this.#run(lease.orgId, plan, now, waiters.length, extra)
      .then((result) => this.#onLease(lease, plan, now, waiters, result, isLeasing))
      .catch((error: unknown) => {
        for (const w of waiters) w.reject(error);
      })
      .finally(() => {
        lease.inFlight--;
        if (!isLeasing) return;
        lease.isLeasing = false;
        // Requests refused while this lease was on its way and not served by it ask again.
        if (lease.parked.length > 0) {
          lease.waiters.push(...lease.parked.splice(0));
          this.#schedule(lease);
        }
      });
    this.#track(done);
  }

  #run(orgId: string, plan: Plan, now: Date, need: number, extra: number): Promise<RespValue[]> {
    const keys = this.#keysOf(orgId, now);
    const nowMs = now.getTime();
    return this.scripts.run(LEASE, [
      keys.bucket,
      keys.monthRequests,
      keys.monthComputeMs,
      keys.spendLimits,
      ...quotaLimitArgs(plan),
      secondsTo(keys.monthEnd, nowMs),
      nowMs,
      keys.spendUsagePrefix,
      need,
      extra,
      this.#computeMsPerRequest,
    ]) as Promise<RespValue[]>;
  }

  async #onLease(
    lease: OrgLease,
    plan: Plan,
    now: Date,
    queued: Waiter[],
    result: RespValue[],
    isLeasing: boolean,
  ): Promise<void> {
    let waiters = queued;
    const code = Number(result[0]);
    if (code === 5) {
      // The period's limits are not in Redis yet (first request, or the period rolled over).
      await refreshSpendLimits(this.#spendDeps, lease.orgId);
      for (const w of waiters) {
        if (w.isRetry) w.reject(new ServingError("INTERNAL", `spend limits of ${lease.orgId} could not be loaded`));
        else lease.waiters.push({ ...w, isRetry: true });
      }
      if (lease.waiters.length > 0) this.#schedule(lease);
      return;
    }
    if (code !== 0) {
      // Refused, but a lease that arrived meanwhile may hold admissions for them.
      waiters = this.#fromPool(lease, waiters);
      // A lease asked for ahead of demand, refused or with nothing to spare: nobody waits on it.
      if (waiters.length === 0) return;
    }
    if (code !== 0 && lease.isLeasing && !isLeasing) {
      // Refused while a lease of this gateway (counted in Redis already) is on its way: what it
      // holds may be enough (refusing now would refuse requests that admission one at a time
      // would admit). They ask again once it has arrived, if it did not serve them. At most one
      // lease is on its way at a time, so this waits one round trip at most.
      lease.parked.push(...waiters);
      return;
    }
    if (code === 1 || code === 2 || code === 3) {
      const refusal = quotaRefusal(code, Number(result[1]), plan, secondsToMonthEnd(now));
      for (const w of waiters) w.reject(new ServingError("RATE_LIMITED", refusal.message, refusal.retryAfterSeconds));
      return;
    }
    const cap = Number(result[2]);
    if (cap >= 0) {
      const decision: SpendCapDecision = { allowed: code === 0, projectedCents: Number(result[1]), capCents: cap };
      try {
        await this.#notices(lease.orgId, decision, String(result[3]));
      } catch (error) {
        // As when admitting one by one: a notice that could not be recorded fails its requests
        // (and is tried again by the next ones); what was leased stays usable.
        if (code === 0) this.#keep(lease, Number(result[4]), this.#takenIn(lease, plan, now, result));
        for (const w of waiters) w.reject(error);
        return;
      }
      if (!decision.allowed) {
        const error = new ServingError(
          "PAYMENT_REQUIRED",
          `projected spend this period ($${(decision.projectedCents / 100).toFixed(2)}) would pass the organization's ` +
            `spend cap of $${(cap / 100).toFixed(2)}: raise the cap in the dashboard's billing page`,
        );
        for (const w of waiters) w.reject(error);
        return;
      }
    }
    const granted = Number(result[4]);
    const admitted = Math.min(granted, waiters.length);
    for (let i = 0; i < admitted; i++) waiters[i]?.resolve();
    if (granted > admitted) this.#keep(lease, granted - admitted, this.#takenIn(lease, plan, now, result));
    // Fewer granted than asked for: the rest take what the pool holds, or ask again (and are
    // refused for the reason that stopped them).
    const rest = admitted < waiters.length ? this.#fromPool(lease, waiters.slice(admitted)) : [];
    if (rest.length > 0) {
      lease.waiters.push(...rest);
      this.#schedule(lease);
    }
  }

  /** Admits waiters from the pool while it holds unexpired admissions; returns those left waiting. */
  #fromPool(lease: OrgLease, waiters: Waiter[]): Waiter[] {
    if (lease.tokens === 0 || performance.now() >= lease.expiresAt) return waiters;
    const served = Math.min(lease.tokens, waiters.length);
    lease.tokens -= served;
    for (let i = 0; i < served; i++) waiters[i]?.resolve();
    return served === waiters.length ? [] : waiters.slice(served);
  }

  #takenIn(lease: OrgLease, plan: Plan, now: Date, result: RespValue[]): NonNullable<OrgLease["takenIn"]> {
    const keys = this.#keysOf(lease.orgId, now);
    return { keys, usageKey: `${keys.spendUsagePrefix}${String(result[3])}`, burst: plan.limits.burstRequests };
  }

  /** Adds leased admissions to the pool: requests already waiting take them first. */
  #keep(lease: OrgLease, count: number, takenIn: NonNullable<OrgLease["takenIn"]>): void {
    const held = lease.takenIn;
    if (
      lease.tokens > 0 &&
      held !== undefined &&
      (held.keys.monthRequests !== takenIn.keys.monthRequests || held.usageKey !== takenIn.usageKey)
    ) {
      this.#giveBack(lease);
    }
    let left = count;
    for (const queue of [lease.parked, lease.waiters]) {
      while (left > 0 && queue.length > 0) {
        queue.shift()?.resolve();
        left--;
      }
    }
    if (left === 0) return;
    lease.tokens += left;
    lease.takenIn = takenIn;
    lease.expiresAt = performance.now() + LEASE_MS;
    if (lease.expiry === undefined) {
      lease.expiry = setTimeout(() => this.#expire(lease), LEASE_MS);
      lease.expiry.unref();
    }
  }

  #expire(lease: OrgLease): void {
    lease.expiry = undefined;
    if (lease.tokens === 0) return;
    const left = lease.expiresAt - performance.now();
    if (left > 0) {
      lease.expiry = setTimeout(() => this.#expire(lease), Math.ceil(left));
      lease.expiry.unref();
      return;
    }
    this.#giveBack(lease);
  }

  /** Returns the pool's unused admissions to Redis (token bucket, month's requests, period's spend). */
  #giveBack(lease: OrgLease): void {
    const count = lease.tokens;
    const takenIn = lease.takenIn;
    lease.tokens = 0;
    if (count === 0 || takenIn === undefined) return;
    const sent = this.scripts
      .run(RETURN, [takenIn.keys.bucket, takenIn.keys.monthRequests, takenIn.usageKey, count, takenIn.burst])
      .then(
        () => {},
        (err: unknown) => this.logger.error({ err, orgId: lease.orgId, count }, "unused admissions not given back"),
      );
    this.#track(sent);
  }

  #track(sent: Promise<void>): void {
    this.#sending.add(sent);
    void sent.then(() => this.#sending.delete(sent));
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
   * Appends the usage event and charges its compute (quota and spend cap). Callers send their answer
   * without waiting for the reply. While events come at least every METER_HOLD_GAP_MS (on
   * average), they are held for at most METER_FLUSH_MS (or until METER_BATCH are held) and leave as one stream
   * entry per organization and month, with one compute charge; otherwise each leaves with its
   * event-loop turn's write. close() sends whatever is held. An answered request is metered once; a
   * failure is logged (the answer is not withheld). The resolved promise says the event reached
   * Redis (or failed and was logged).
   */
  meter(event: UsageEvent): Promise<void> {
    return new Promise((resolve) => {
      this.#heldWaiters.push(resolve);
      this.record(event);
    });
  }

  /** meter without the promise (the request path does not wait for its usage event). */
  record(event: UsageEvent): void {
    this.#held.push(event);
    const at = performance.now();
    this.#meterGapMs = 0.8 * this.#meterGapMs + 0.2 * Math.min(at - this.#lastMeterAt, 1_000);
    this.#lastMeterAt = at;
    this.#computeMsPerRequest = 0.9 * this.#computeMsPerRequest + 0.1 * Math.ceil(Math.max(0, event.computeMs));
    if (this.#held.length >= METER_BATCH) this.#flush();
    else if (this.#meterGapMs > METER_HOLD_GAP_MS) {
      // A low rate: the event leaves with this turn's write (a timer would cost a wake-up of its own).
      if (!this.#isFlushScheduled) {
        this.#isFlushScheduled = true;
        this.scripts.beforeWrite(this.#flushNow);
      }
    } else this.#flushTimer ??= setTimeout(this.#flushNow, METER_FLUSH_MS);
  }

  readonly #flushNow = () => this.#flush();

  /** Sends every held usage event: one METER call per organization and month. */
  #flush(): void {
    this.#isFlushScheduled = false;
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#held.length === 0) return;
    const held = this.#held;
    const waiters = this.#heldWaiters;
    this.#held = [];
    this.#heldWaiters = [];
    // Nearly always one organization and month: one group, no map.
    const first = held[0] as UsageEvent;
    const firstKeys = this.#keysOf(first.orgId, new Date(first.at));
    let groups: Map<string, { keys: OrgKeys; events: UsageEvent[] }> | undefined;
    for (let i = 1; i < held.length; i++) {
      const event = held[i] as UsageEvent;
      const keys =
        event.orgId === first.orgId && event.at >= firstKeys.monthStart && event.at < firstKeys.monthEnd
          ? firstKeys
          : this.#keysOf(event.orgId, new Date(event.at));
      if (groups === undefined) {
        if (keys === firstKeys) continue;
        // A second group: regroup everything so far.
        groups = new Map([[firstKeys.monthComputeMs, { keys: firstKeys, events: held.slice(0, i) }]]);
      }
      const group = groups.get(keys.monthComputeMs);
      if (group) group.events.push(event);
      else groups.set(keys.monthComputeMs, { keys, events: [event] });
    }
    const sends =
      groups === undefined
        ? [this.#send(firstKeys, held)]
        : [...groups.values()].map(({ keys, events }) => this.#send(keys, events));
    for (const sent of sends) this.#track(sent);
    if (waiters.length > 0) {
      void Promise.all(sends).then(() => {
        for (const resolve of waiters) resolve();
      });
    }
  }

  /**
   * Sends held usage events, waits for leases on their way, gives back every unused admission,
   * waits for every reply, then closes the script connection.
   */
  async close(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#sending]);
    for (const lease of this.#leases.values()) {
      clearTimeout(lease.expiry);
      this.#giveBack(lease);
    }
    await Promise.all([...this.#sending]);
    await this.scripts.close();
  }

  #send(keys: OrgKeys, events: UsageEvent[]): Promise<void> {
    let quotaMs = 0;
    let spendMs = 0;
    let lastAt = 0;
    for (const event of events) {
      const computeMs = event.computeMs > 0 ? event.computeMs : 0;
      quotaMs += Math.ceil(computeMs);
      spendMs += Math.round(computeMs);
      lastAt = Math.max(lastAt, event.at);
    }
    const first = events[0] as UsageEvent;
    return (
      this.scripts.run(METER, [
        this.#stream,
        keys.monthComputeMs,
        keys.spendLimits,
        USAGE_STREAM_MAXLEN,
        quotaMs,
        secondsTo(keys.monthEnd, lastAt),
        keys.spendUsagePrefix,
        spendMs,
        newUsageBatchId(),
        encodeUsageBatch(events),
      ]) as Promise<number>
    )
      .then(async (spendRecorded) => {
        // Spend limits not loaded yet: load them, then record the compute (rare: once per period).
        if (spendRecorded === 0) {
          await refreshSpendLimits(this.#spendDeps, first.orgId);
          await recordComputeUsage(this.#spendDeps, first.orgId, spendMs);
        }
      })
      .catch((err) =>
        this.logger.error(
          { err, requestIds: events.map((e) => e.eventId), deploymentId: first.deploymentId },
          "usage events not recorded",
        ),
      );
  }
}
