import { describe, expect, it } from "vitest";
import { billingPeriodOf } from "./billing-period.ts";

describe("billingPeriodOf", () => {
  const now = new Date("2026-11-22T12:00:00Z");

  it("is the subscription's current period when it covers now", () => {
    const period = {
      currentPeriodStart: new Date("2026-11-10T08:00:00Z"),
      currentPeriodEnd: new Date("2026-12-10T08:00:00Z"),
    };
    expect(billingPeriodOf(period, now)).toEqual({ start: period.currentPeriodStart, end: period.currentPeriodEnd });
  });

  it("is the UTC calendar month without a subscription, or when its period has lapsed", () => {
    const month = { start: new Date("2026-11-01T00:00:00Z"), end: new Date("2026-12-01T00:00:00Z") };
    expect(billingPeriodOf(null, now)).toEqual(month);
    const lapsed = {
      currentPeriodStart: new Date("2026-10-01T00:00:00Z"),
      currentPeriodEnd: new Date("2026-11-01T00:00:00Z"),
    };
    expect(billingPeriodOf(lapsed, now)).toEqual(month);
    expect(billingPeriodOf(null, new Date("2026-12-31T23:59:59Z")).end).toEqual(new Date("2027-01-01T00:00:00Z"));
  });
});
