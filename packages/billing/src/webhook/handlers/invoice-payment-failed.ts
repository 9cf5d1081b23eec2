import type Stripe from "stripe";
import { lockRowByCustomer, recordPaymentFailed } from "../../subscription-sync.ts";
import type { EventHandler } from "../handler.ts";
import { customerIdOf, subscriptionIdOf } from "./invoice-subscription.ts";

/**
 * A payment failed: the subscription is past due and its grace period starts (once: Stripe's retries
 * of the same charge do not extend it). When it ends without a paid invoice, the grace-period job
 * cancels the subscription and the organization drops to Free.
 */
export const invoicePaymentFailed: EventHandler<Stripe.InvoicePaymentFailedEvent> = async (context) => {
  const { tx, event, eventAt, config } = context;
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
  if (row.status === "canceled") return { orgId: row.orgId, applied: false, reason: "the subscription already ended" };
  const graceEndsAt = row.graceEndsAt ?? new Date(eventAt.getTime() + config.BILLING_GRACE_DAYS * 86_400_000);
  await tx.subscription.update({
    where: { orgId: row.orgId },
    data: { status: "past_due", graceEndsAt, stripeEventAt: eventAt },
  });
  if (!row.graceEndsAt) await recordPaymentFailed(tx, row.orgId, subscriptionId, graceEndsAt);
  return { orgId: row.orgId, applied: true };
};
