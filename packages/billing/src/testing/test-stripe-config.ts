import type { BillingConfig } from "../deps.ts";

/** Stripe settings for tests: the price ids exist only in the double. */
export const TEST_STRIPE_CONFIG = {
  STRIPE_SECRET_KEY: "sk_test_kiln_double",
  STRIPE_WEBHOOK_SECRET: "whsec_kiln_double",
  STRIPE_PRICE_PRO: "price_pro_monthly",
  STRIPE_PRICE_PRO_REQUESTS: "price_pro_requests",
  STRIPE_PRICE_PRO_COMPUTE_SECONDS: "price_pro_compute",
  STRIPE_PRICE_ENTERPRISE: "price_enterprise_monthly",
  STRIPE_PRICE_ENTERPRISE_REQUESTS: "price_enterprise_requests",
  STRIPE_PRICE_ENTERPRISE_COMPUTE_SECONDS: "price_enterprise_compute",
  STRIPE_METER_REQUESTS: "kiln_requests",
  STRIPE_METER_COMPUTE_SECONDS: "kiln_compute_seconds",
  BILLING_GRACE_DAYS: 7,
} satisfies BillingConfig & { STRIPE_SECRET_KEY: string };
