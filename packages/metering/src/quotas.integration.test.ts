import { randomBytes } from "node:crypto";
import { type Plan, plans } from "@kiln/plans";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { QuotaEnforcer } from "./quotas.ts";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
afterAll(() => redis.disconnect());

const enforcer = () => new QuotaEnforcer(redis, `test:${randomBytes(4).toString("hex")}:`);
const withLimits = (limits: Partial<Plan["limits"]>): Plan => ({
  ...plans.free,
  limits: { ...plans.free.limits, ...limits },
});

describe("quotas", () => {
  it("admits a burst, then refuses with the wait until the next token", async () => {
    const quotas = enforcer();
    // A slow refill, so the test does not depend on how fast it runs.
    const plan = withLimits({ requestsPerSecond: 0.01, burstRequests: 3, monthlyRequests: null });
    for (let i = 0; i < 3; i++) expect(await quotas.admit("org_a", plan)).toEqual({ admitted: true });
    const refused = await quotas.admit("org_a", plan);
    expect(refused).toMatchObject({ admitted: false, reason: "rate" });
    if (!refused.admitted) expect(refused.retryAfterSeconds).toBeGreaterThan(50);
    // Buckets are per organization.
    expect(await quotas.admit("org_b", plan)).toEqual({ admitted: true });
  });

  it("refuses past the monthly request cap until the month ends", async () => {
    const quotas = enforcer();
    const plan = withLimits({ requestsPerSecond: 1000, burstRequests: 1000, monthlyRequests: 2 });
    expect((await quotas.admit("org_a", plan)).admitted).toBe(true);
    expect((await quotas.admit("org_a", plan)).admitted).toBe(true);
    // Another month has its own counter: the cap applies per calendar month.
    expect((await quotas.admit("org_a", plan, new Date(Date.UTC(2031, 0, 15)))).admitted).toBe(true);
    const now = new Date();
    const third = await quotas.admit("org_a", plan, now);
    expect(third).toMatchObject({
      admitted: false,
      reason: "monthly-requests",
      message: "monthly quota of 2 requests on the Free plan is used up",
    });
    expect(await quotas.usage("org_a", now)).toEqual({ requests: 2, computeSeconds: 0 });
  });

  it("refuses once the month's compute-seconds are spent", async () => {
    const quotas = enforcer();
    const plan = withLimits({
      requestsPerSecond: 1000,
      burstRequests: 1000,
      monthlyRequests: null,
      monthlyComputeSeconds: 1,
    });
    expect((await quotas.admit("org_a", plan)).admitted).toBe(true);
    // Compute is charged in whole milliseconds, rounded up: 998.2 ms counts 999.
    await quotas.chargeCompute("org_a", 998.2);
    expect((await quotas.admit("org_a", plan)).admitted).toBe(true);
    await quotas.chargeCompute("org_a", 0.5);
    expect(await quotas.admit("org_a", plan)).toMatchObject({ admitted: false, reason: "monthly-compute" });
  });
});
