import type { Config } from "@kiln/config";
import { KilnError } from "@kiln/errors";
import Stripe from "stripe";

type StripeClientConfig = Pick<
  Config,
  "STRIPE_SECRET_KEY" | "STRIPE_API_HOST" | "STRIPE_API_PORT" | "STRIPE_API_PROTOCOL"
>;

/** True when a Stripe key is set; without one every organization stays on Free. */
export function isBillingConfigured(config: Pick<Config, "STRIPE_SECRET_KEY">): boolean {
  return Boolean(config.STRIPE_SECRET_KEY);
}

/**
 * The Stripe SDK client for Kiln's account. Host, port and protocol come from config so that tests
 * and local development can point the real SDK at the Stripe double (packages/billing/src/testing).
 */
export function createStripeClient(config: StripeClientConfig): Stripe {
  if (!config.STRIPE_SECRET_KEY) {
    throw new KilnError("BAD_REQUEST", "Billing is not configured on this Kiln: set STRIPE_SECRET_KEY");
  }
  return new Stripe(config.STRIPE_SECRET_KEY, {
    ...(config.STRIPE_API_HOST ? { host: config.STRIPE_API_HOST } : {}),
    ...(config.STRIPE_API_PORT ? { port: config.STRIPE_API_PORT } : {}),
    ...(config.STRIPE_API_PROTOCOL ? { protocol: config.STRIPE_API_PROTOCOL } : {}),
    // The SDK retries network errors and 409/429/5xx with the same idempotency key.
    maxNetworkRetries: 2,
    timeout: 20_000,
    appInfo: { name: "kiln" },
  });
}
