import type { Plan } from "./plans.ts";

/** Usage in a billing period; compute-seconds are exact to the millisecond. */
export type PeriodUsage = { requests: number; computeSeconds: number };

export type ProjectedInvoice = {
  baseCents: number;
  requestOverageCents: number;
  computeOverageCents: number;
  totalCents: number;
};

/**
 * The price of usage beyond what is included, in cents rounded half up (as Stripe rounds a line
 * item). Amounts are counted in `scale`ths of a unit (compute in milliseconds: scale 1000) so that
 * every intermediate value is an integer.
 */
export function overageCents(
  usedScaled: number,
  includedUnits: number,
  microDollarsPerUnit: number,
  scale = 1,
): number {
  const billableScaled = Math.max(0, usedScaled - includedUnits * scale);
  const scaledMicroDollars = billableScaled * microDollarsPerUnit;
  if (!Number.isSafeInteger(scaledMicroDollars)) {
    throw new RangeError(
      `overage of ${billableScaled / scale} units at ${microDollarsPerUnit} µ$ is too large to price exactly`,
    );
  }
  const perCent = 10_000 * scale;
  return Math.floor((scaledMicroDollars + perCent / 2) / perCent);
}

/**
 * What the invoice for a period will be if usage stops at `usage`: the flat price plus each
 * metered line beyond what the plan includes. Plans without overage bill nothing beyond the price
 * (their usage is capped instead).
 */
export function projectInvoice(plan: Plan, usage: PeriodUsage): ProjectedInvoice {
  const requestOverageCents = plan.overage
    ? overageCents(usage.requests, plan.included.requests, plan.overage.microDollarsPerRequest)
    : 0;
  const computeOverageCents = plan.overage
    ? overageCents(
        Math.round(usage.computeSeconds * 1000),
        plan.included.computeSeconds,
        plan.overage.microDollarsPerComputeSecond,
        1000,
      )
    : 0;
  return {
    baseCents: plan.monthlyPriceCents,
    requestOverageCents,
    computeOverageCents,
    totalCents: plan.monthlyPriceCents + requestOverageCents + computeOverageCents,
  };
}
