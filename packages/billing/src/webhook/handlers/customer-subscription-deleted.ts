import type Stripe from "stripe";
import { applySubscriptionSnapshot, snapshotOf } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";

/** A subscription ended (canceled in the portal, or by Kiln after the grace period): the org is on Free. */
export const customerSubscriptionDeleted: EventHandler<Stripe.CustomerSubscriptionDeletedEvent> = (context) =>
  applySubscriptionSnapshot(context.tx, snapshotOf(context.event.data.object, context.config), context.eventAt, {
    graceDays: context.config.BILLING_GRACE_DAYS,
  });
