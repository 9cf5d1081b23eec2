import type Stripe from "stripe";
import { applySubscriptionSnapshot, snapshotOf } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";

/** A subscription changed: plan, status (past_due, active again), period, cancel-at-period-end. */
export const customerSubscriptionUpdated: EventHandler<Stripe.CustomerSubscriptionUpdatedEvent> = (context) =>
  applySubscriptionSnapshot(context.tx, snapshotOf(context.event.data.object, context.config), context.eventAt, {
    graceDays: context.config.BILLING_GRACE_DAYS,
  });
