import type { EventHandler } from "../handler.ts";
import { checkoutSessionCompleted } from "./checkout-session-completed.ts";
import { customerSubscriptionCreated } from "./customer-subscription-created.ts";
import { customerSubscriptionDeleted } from "./customer-subscription-deleted.ts";
import { customerSubscriptionUpdated } from "./customer-subscription-updated.ts";
import { invoicePaid } from "./invoice-paid.ts";
import { invoicePaymentFailed } from "./invoice-payment-failed.ts";

/**
 * The allow-list: the only Stripe events Kiln acts on, each with its handler. Any other event type is
 * acknowledged (200) and ignored, so enabling more events on the endpoint in Stripe changes nothing.
 */
export const EVENT_HANDLERS = {
  "checkout.session.completed": checkoutSessionCompleted,
  "customer.subscription.created": customerSubscriptionCreated,
  "customer.subscription.updated": customerSubscriptionUpdated,
  "customer.subscription.deleted": customerSubscriptionDeleted,
  "invoice.paid": invoicePaid,
  "invoice.payment_failed": invoicePaymentFailed,
} as const satisfies Record<string, EventHandler<never>>;

export type HandledEventType = keyof typeof EVENT_HANDLERS;

export function isHandledEventType(type: string): type is HandledEventType {
  return Object.hasOwn(EVENT_HANDLERS, type);
}
