import type Stripe from "stripe";

/** The subscription an invoice bills, or null for an invoice outside subscriptions. */
export function subscriptionIdOf(invoice: Stripe.Invoice): string | null {
  const subscription = invoice.parent?.subscription_details?.subscription;
  if (!subscription) return null;
  return typeof subscription === "string" ? subscription : subscription.id;
}

export function customerIdOf(invoice: Stripe.Invoice): string | null {
  if (!invoice.customer) return null;
  return typeof invoice.customer === "string" ? invoice.customer : invoice.customer.id;
}
