import { planFor } from "@kiln/plans";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changePlan } from "./change-plan.ts";
import { checkSpendCap, periodUsage, recordComputeUsage, refreshSpendLimits, setSpendCap } from "./spend-cap.ts";
import { type BillingHarness, startBillingHarness } from "./testing/billing-harness.ts";

const urls = { successUrl: "http://kiln.test/billing", cancelUrl: "http://kiln.test/billing" };
const pro = planFor("pro");

describe("spend caps", () => {
  let h: BillingHarness;
  beforeAll(async () => {
    h = await startBillingHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function proOrg() {
    const orgId = await h.seedOrg();
    const { url } = await changePlan(h.deps, { orgId, planId: "pro", ...urls });
    await h.double.completeCheckout(url.split("/").pop() ?? "");
    return orgId;
  }

  /** Puts the period's counted requests at `requests`, as admissions would have. */
  async function useRequests(orgId: string, requests: number) {
    const billing = await refreshSpendLimits(h.deps, orgId);
    await h.deps.redis.hset(
      `${h.deps.redisKeyPrefix}billing:usage:${orgId}:${billing.period.start.getTime()}`,
      "requests",
      String(requests),
    );
  }

  it("admits everything without a cap, and counts it", async () => {
    const orgId = await proOrg();
    const decision = await checkSpendCap(h.deps, orgId);
    expect(decision).toEqual({ allowed: true, projectedCents: 4900, capCents: null });
    const billing = await refreshSpendLimits(h.deps, orgId);
    expect((await periodUsage(h.deps, orgId, billing.period)).requests).toBe(1);
  });

  it("refuses requests once the projection would pass the cap mid-burst, and serves none past it", async () => {
    const orgId = await proOrg();
    // At the allowance, with a cap of the flat $49.00 plus 10 cents; each further request costs 500 µ$
    // (0.05 cents), and Stripe rounds each line half up.
    await useRequests(orgId, pro.included.requests);
    await setSpendCap(h.deps, orgId, 4910);
    const burst = await Promise.all(Array.from({ length: 300 }, () => checkSpendCap(h.deps, orgId)));
    const admitted = burst.filter((d) => d.allowed).length;
    // Request 1,000,209 projects 10.45 cents (rounds to 10); request 1,000,210 projects 10.5 → 11 cents.
    expect(admitted).toBe(209);
    expect(burst.filter((d) => !d.allowed).every((d) => d.projectedCents > 4910)).toBe(true);
    const billing = await refreshSpendLimits(h.deps, orgId);
    expect((await periodUsage(h.deps, orgId, billing.period)).requests).toBe(pro.included.requests + admitted);

    // Requests admitted before the cap finish and add their compute; nothing more is admitted.
    await recordComputeUsage(h.deps, orgId, 5_000);
    expect((await checkSpendCap(h.deps, orgId)).allowed).toBe(false);

    // Raising the cap lets traffic through again.
    await setSpendCap(h.deps, orgId, 10_000);
    expect((await checkSpendCap(h.deps, orgId)).allowed).toBe(true);
  });

  it("records the 50%, 80% and 100% notices once each", async () => {
    const orgId = await proOrg();
    await setSpendCap(h.deps, orgId, 9_800); // the flat $49 is already 50%
    await checkSpendCap(h.deps, orgId);
    await checkSpendCap(h.deps, orgId);
    let kinds = (await h.deps.prisma.billingNotice.findMany({ where: { orgId } })).map((n) => n.kind);
    expect(kinds).toEqual(["spend_cap_50"]);

    // 80% of $98 is $78.40: $29.40 of overage = 58,800 extra requests.
    await useRequests(orgId, pro.included.requests + 58_800);
    await checkSpendCap(h.deps, orgId);
    kinds = (await h.deps.prisma.billingNotice.findMany({ where: { orgId } })).map((n) => n.kind);
    expect(kinds.sort()).toEqual(["spend_cap_50", "spend_cap_80"]);

    // $98.05 projected: past the cap.
    await useRequests(orgId, pro.included.requests + 98_100);
    expect((await checkSpendCap(h.deps, orgId)).allowed).toBe(false);
    await checkSpendCap(h.deps, orgId);
    const notices = await h.deps.prisma.billingNotice.findMany({ where: { orgId }, orderBy: { kind: "asc" } });
    expect(notices.map((n) => n.kind)).toEqual(["spend_cap_50", "spend_cap_80", "spend_cap_100"]);
    expect(notices[2]?.message).toMatch(/\$98\.00 spend cap.*402/);
  });

  it("rebuilds its Redis state from Postgres (cap, plan, rollups) after Redis lost it", async () => {
    const orgId = await proOrg();
    await setSpendCap(h.deps, orgId, 4900);
    const keys = await h.deps.redis.keys(`${h.deps.redisKeyPrefix}billing:*:${orgId}*`);
    await h.deps.redis.del(...keys);
    // At the flat price exactly: the next request's projection is still $49.00, within the cap.
    expect(await checkSpendCap(h.deps, orgId)).toEqual({ allowed: true, projectedCents: 4900, capCents: 4900 });
  });

  it("refuses a malformed cap with a clear message", async () => {
    const orgId = await proOrg();
    await expect(setSpendCap(h.deps, orgId, -1)).rejects.toThrow(/whole number of cents, 0 or more; got -1/);
    await expect(setSpendCap(h.deps, orgId, 1.5)).rejects.toThrow(/whole number of cents/);
  });
});
