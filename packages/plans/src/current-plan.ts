import { type PlanId, planFor } from "./plans.ts";

/** Stripe's subscription statuses, as stored in Subscription.status. */
export type SubscriptionStatus =
  | "trialing"
  | "active"
  | "past_due"
  | "canceled"
  | "unpaid"
  | "incomplete"
  | "incomplete_expired"
  | "paused";

/** The fields of an organization's Subscription row that decide its plan. */
export type SubscriptionState = {
  plan: string;
  status: SubscriptionStatus;
  /** Set when a payment failed: the paid plan holds until then, Free applies after. */
  graceEndsAt: Date | null;
};

/**
 * The plan an organization is on right now, from its Subscription row (null: it never subscribed).
 * A paid plan counts only while Stripe says the subscription is in good standing, or during the
 * grace period after a failed payment; anything else (canceled, unpaid, never completed, paused)
 * falls back to Free, so a lapsed subscription can never keep paid limits.
 */
export function currentPlanId(subscription: SubscriptionState | null, now: Date = new Date()): PlanId {
  if (!subscription) return "free";
  const plan = planFor(subscription.plan).id;
  switch (subscription.status) {
    case "active":
    case "trialing":
      return plan;
    case "past_due":
      return subscription.graceEndsAt === null || now < subscription.graceEndsAt ? plan : "free";
    case "canceled":
    case "unpaid":
    case "incomplete":
    case "incomplete_expired":
    case "paused":
      return "free";
  }
}
