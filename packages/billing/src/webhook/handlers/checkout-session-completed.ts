import type Stripe from "stripe";
import { applySubscriptionSnapshot, snapshotOf } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";

/**
 * The customer paid on the Checkout page. The session names the new subscription; its current state
 * comes from Stripe itself, since the subscription's own events may not have arrived yet.
 */
export const checkoutSessionCompleted: EventHandler<Stripe.CheckoutSessionCompletedEvent> = async (context) => {
  const session = context.event.data.object;
  if (session.mode !== "subscription" || !session.subscription) {
    return { orgId: null, applied: false, reason: "not a subscription checkout" };
  }
  const subscriptionId = typeof session.subscription === "string" ? session.subscription : session.subscription.id;
  const subscription = await context.stripe.subscriptions.retrieve(subscriptionId);
  return applySubscriptionSnapshot(context.tx, snapshotOf(subscription, context.config), context.eventAt, {
    graceDays: context.config.BILLING_GRACE_DAYS,
  });
};
