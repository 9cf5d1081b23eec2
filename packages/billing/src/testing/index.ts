export {
  type BillingHarness,
  startBillingHarness,
  startWebhookReceiver,
  TEST_STRIPE_CONFIG,
} from "./billing-harness.ts";
export { type DeliveredEvent, StripeDouble, type StripeDoubleOptions } from "./stripe-double.ts";
