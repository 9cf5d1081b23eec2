import type Stripe from "stripe";
import { lockRowByCustomer } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";
import { customerIdOf, subscriptionIdOf } from "./invoice-subscription.ts";

/**
 * An invoice was paid: a subscription that was past due is in good standing again, its grace period
 * ends, and the payment-failure notices it raised are dismissed.
 */
export const invoicePaid: EventHandler<Stripe.InvoicePaidEvent> = async ({ tx, event, eventAt }) => {
  const invoice = event.data.object;
  const customerId = customerIdOf(invoice);
  const subscriptionId = subscriptionIdOf(invoice);
  const row = customerId ? await lockRowByCustomer(tx, customerId) : null;
  if (!row) return { orgId: null, applied: false, reason: "unknown customer" };
  if (!subscriptionId || row.stripeSubscriptionId !== subscriptionId) {
    return { orgId: row.orgId, applied: false, reason: "not the organization's current subscription" };
  }
  if (row.stripeEventAt && eventAt < row.stripeEventAt) {
    return { orgId: row.orgId, applied: false, reason: "older than the state already applied" };
  }
  await tx.subscription.update({
    where: { orgId: row.orgId },
    data: { graceEndsAt: null, stripeEventAt: eventAt, ...(row.status === "past_due" ? { status: "active" } : {}) },
  });
  await tx.billingNotice.updateMany({
    where: { orgId: row.orgId, kind: "payment_failed", dismissedAt: null },
    data: { dismissedAt: eventAt },
  });
  return { orgId: row.orgId, applied: true };
};
