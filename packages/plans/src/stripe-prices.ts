import type { PlanId } from "./plans.ts";

/**
 * The Stripe prices of a paid plan: the flat monthly price and the two metered prices that bill
 * usage reported to Kiln's meters (their tiers include the plan's allowance at zero cost).
 */
export type StripePlanPrices = { base: string; requests: string; computeSeconds: string };

/** The STRIPE_PRICE_* settings of packages/config, all optional until billing is configured. */
export type StripePriceConfig = {
  STRIPE_PRICE_PRO?: string | undefined;
  STRIPE_PRICE_PRO_REQUESTS?: string | undefined;
  STRIPE_PRICE_PRO_COMPUTE_SECONDS?: string | undefined;
  STRIPE_PRICE_ENTERPRISE?: string | undefined;
  STRIPE_PRICE_ENTERPRISE_REQUESTS?: string | undefined;
  STRIPE_PRICE_ENTERPRISE_COMPUTE_SECONDS?: string | undefined;
};

/** Stripe prices of a plan, or null for Free (no Stripe subscription) or a plan left unconfigured. */
export function stripePricesFor(planId: PlanId, config: StripePriceConfig): StripePlanPrices | null {
  const [base, requests, computeSeconds] =
    planId === "pro"
      ? [config.STRIPE_PRICE_PRO, config.STRIPE_PRICE_PRO_REQUESTS, config.STRIPE_PRICE_PRO_COMPUTE_SECONDS]
      : planId === "enterprise"
        ? [
            config.STRIPE_PRICE_ENTERPRISE,
            config.STRIPE_PRICE_ENTERPRISE_REQUESTS,
            config.STRIPE_PRICE_ENTERPRISE_COMPUTE_SECONDS,
          ]
        : [];
  return base && requests && computeSeconds ? { base, requests, computeSeconds } : null;
}

/** The paid plan a Stripe price belongs to (any of its three prices), or null if none does. */
export function planForStripePrice(priceId: string, config: StripePriceConfig): PlanId | null {
  for (const planId of ["pro", "enterprise"] as const) {
    const prices = stripePricesFor(planId, config);
    if (prices && [prices.base, prices.requests, prices.computeSeconds].includes(priceId)) return planId;
  }
  return null;
}
