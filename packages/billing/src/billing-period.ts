/** A billing period: [start, end). */
export type BillingPeriod = { start: Date; end: Date };

/**
 * The period usage is counted in: the Stripe subscription's current period when it covers `now`,
 * otherwise (Free, or a period Stripe has not renewed yet) the calendar month in UTC.
 */
export function billingPeriodOf(
  subscription: { currentPeriodStart: Date | null; currentPeriodEnd: Date | null } | null,
  now: Date,
): BillingPeriod {
  const start = subscription?.currentPeriodStart;
  const end = subscription?.currentPeriodEnd;
  if (start && end && start <= now && now < end) return { start, end };
  return {
    start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
}
