import type Stripe from "stripe";
import { applySubscriptionSnapshot, snapshotOf } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";

/** A subscription started (from Checkout, or created in Stripe's dashboard for a known customer). */
export const customerSubscriptionCreated: EventHandler<Stripe.CustomerSubscriptionCreatedEvent> = (context) =>
  applySubscriptionSnapshot(context.tx, snapshotOf(context.event.data.object, context.config), context.eventAt, {
    graceDays: context.config.BILLING_GRACE_DAYS,
  });
