export { currentPlanId, type SubscriptionState, type SubscriptionStatus } from "./current-plan.ts";
export {
  type GpuSliceProfile,
  isPlanId,
  isUpgrade,
  PLAN_IDS,
  type Plan,
  type PlanId,
  planFor,
  plans,
  UnknownPlanError,
} from "./plans.ts";
export { overageCents, type PeriodUsage, type ProjectedInvoice, projectInvoice } from "./pricing.ts";
export { planForStripePrice, type StripePlanPrices, type StripePriceConfig, stripePricesFor } from "./stripe-prices.ts";
