import { describe, expect, it } from "vitest";
import { currentPlanId } from "./current-plan.ts";
import { isUpgrade, PLAN_IDS, planFor, plans, UnknownPlanError } from "./plans.ts";
import { projectInvoice } from "./pricing.ts";
import { planForStripePrice, stripePricesFor } from "./stripe-prices.ts";

describe("plans", () => {
  it("has one entry per plan id, keyed by its own id", () => {
    expect(Object.keys(plans).sort()).toEqual([...PLAN_IDS].sort());
    for (const id of PLAN_IDS) expect(plans[id].id).toBe(id);
  });

  it("asks no card and bills no overage on Free; its caps equal what it includes", () => {
    const free = planFor("free");
    expect(free.requiresPaymentMethod).toBe(false);
    expect(free.monthlyPriceCents).toBe(0);
    expect(free.overage).toBeNull();
    expect(free.limits.monthlyRequests).toBe(free.included.requests);
    expect(free.limits.monthlyComputeSeconds).toBe(free.included.computeSeconds);
  });

  it("grows every limit from Free to Pro to Enterprise", () => {
    const [free, pro, enterprise] = PLAN_IDS.map((id) => plans[id]);
    for (const key of ["deployments", "replicasPerDeployment", "requestsPerSecond", "maxModelBytes"] as const) {
      expect(pro?.limits[key]).toBeGreaterThan(free?.limits[key] ?? Number.POSITIVE_INFINITY);
      expect(enterprise?.limits[key]).toBeGreaterThan(pro?.limits[key] ?? Number.POSITIVE_INFINITY);
    }
    expect(isUpgrade("free", "pro")).toBe(true);
    expect(isUpgrade("enterprise", "pro")).toBe(false);
  });

  it("names an unknown plan in its error", () => {
    expect(() => planFor("gold")).toThrow(UnknownPlanError);
    expect(() => planFor("gold")).toThrow(/"gold".*free, pro, enterprise/);
  });
});

describe("currentPlanId", () => {
  const now = new Date("2026-11-22T12:00:00Z");
  const later = new Date("2026-11-29T12:00:00Z");
  const earlier = new Date("2026-11-20T12:00:00Z");

  it("is Free without a subscription", () => {
    expect(currentPlanId(null, now)).toBe("free");
  });

  it("keeps the paid plan while active, and during the grace period of a failed payment", () => {
    expect(currentPlanId({ plan: "pro", status: "active", graceEndsAt: null }, now)).toBe("pro");
    expect(currentPlanId({ plan: "pro", status: "past_due", graceEndsAt: later }, now)).toBe("pro");
  });

  it("falls back to Free once grace ends or the subscription lapses", () => {
    expect(currentPlanId({ plan: "pro", status: "past_due", graceEndsAt: earlier }, now)).toBe("free");
    for (const status of ["canceled", "unpaid", "incomplete", "incomplete_expired", "paused"] as const) {
      expect(currentPlanId({ plan: "enterprise", status, graceEndsAt: null }, now)).toBe("free");
    }
  });

  it("refuses a row with an unknown plan rather than guessing", () => {
    expect(() => currentPlanId({ plan: "platinum", status: "active", graceEndsAt: null }, now)).toThrow(
      UnknownPlanError,
    );
  });
});

describe("projectInvoice", () => {
  it("is the flat price while usage stays within what is included", () => {
    const pro = planFor("pro");
    expect(projectInvoice(pro, { requests: pro.included.requests, computeSeconds: 0 })).toEqual({
      baseCents: 4900,
      requestOverageCents: 0,
      computeOverageCents: 0,
      totalCents: 4900,
    });
  });

  it("bills usage beyond the allowance to the cent, rounding half up", () => {
    const pro = planFor("pro");
    // 2,001 extra requests at 500 µ$ = 1,000,500 µ$ = 100.05 cents → 100 cents; 25 extra seconds at
    // 400 µ$ = 10,000 µ$ = exactly 1 cent.
    const invoice = projectInvoice(pro, {
      requests: pro.included.requests + 2_001,
      computeSeconds: pro.included.computeSeconds + 25,
    });
    expect(invoice).toEqual({ baseCents: 4900, requestOverageCents: 100, computeOverageCents: 1, totalCents: 5001 });
    // 1 extra request = 500 µ$ = 0.05 cents, which rounds to 0.
    expect(projectInvoice(pro, { requests: pro.included.requests + 1, computeSeconds: 0 }).totalCents).toBe(4900);
    // 10 extra requests = 5,000 µ$ = 0.5 cents → half up to 1 cent.
    expect(projectInvoice(pro, { requests: pro.included.requests + 10, computeSeconds: 0 }).totalCents).toBe(4901);
  });

  it("prices compute to the millisecond", () => {
    const pro = planFor("pro");
    // 12.5 extra seconds at 400 µ$ = 5,000 µ$ = half a cent → 1 cent; 12.499 s → 0 cents.
    const at = (extra: number) =>
      projectInvoice(pro, { requests: 0, computeSeconds: pro.included.computeSeconds + extra }).computeOverageCents;
    expect(at(12.5)).toBe(1);
    expect(at(12.499)).toBe(0);
  });

  it("bills nothing beyond the price on a plan without overage", () => {
    expect(projectInvoice(planFor("free"), { requests: 1e9, computeSeconds: 1e9 }).totalCents).toBe(0);
  });
});

describe("Stripe prices", () => {
  const config = {
    STRIPE_PRICE_PRO: "price_pro",
    STRIPE_PRICE_PRO_REQUESTS: "price_pro_req",
    STRIPE_PRICE_PRO_COMPUTE_SECONDS: "price_pro_cs",
  };

  it("maps a configured plan to its three prices and back", () => {
    expect(stripePricesFor("pro", config)).toEqual({
      base: "price_pro",
      requests: "price_pro_req",
      computeSeconds: "price_pro_cs",
    });
    expect(planForStripePrice("price_pro_cs", config)).toBe("pro");
    expect(planForStripePrice("price_other", config)).toBeNull();
  });

  it("has no prices for Free or for a plan left unconfigured", () => {
    expect(stripePricesFor("free", config)).toBeNull();
    expect(stripePricesFor("enterprise", config)).toBeNull();
  });
});
