// The Stripe double as a process, for trying billing locally without a Stripe account:
//   npm run stripe-double -w @kiln/billing
// then start Kiln with the settings it prints. Checkout and the Customer Portal become one-button
// pages on the double, and it delivers signed webhooks to the web app's /api/stripe/webhook.
import { StripeDouble } from "./stripe-double.ts";
import { TEST_STRIPE_CONFIG } from "./test-stripe-config.ts";

const port = Number(process.env.STRIPE_API_PORT ?? 12111);
const webUrl = `http://${process.env.HOST ?? "127.0.0.1"}:${process.env.WEB_PORT ?? 3000}`;
const double = new StripeDouble({
  secretKey: process.env.STRIPE_SECRET_KEY ?? TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
  webhookSecret: process.env.STRIPE_WEBHOOK_SECRET ?? TEST_STRIPE_CONFIG.STRIPE_WEBHOOK_SECRET,
  webhookUrl: `${webUrl}/api/stripe/webhook`,
  priceAmounts: { price_pro_monthly: 4900, price_enterprise_monthly: 49900 },
});
const address = await double.start(port);
const settings = {
  ...TEST_STRIPE_CONFIG,
  STRIPE_API_HOST: address.host,
  STRIPE_API_PORT: address.port,
  STRIPE_API_PROTOCOL: address.protocol,
};
process.stdout.write(
  `Stripe double on ${address.url}, delivering webhooks to ${webUrl}/api/stripe/webhook\nStart Kiln with:\n` +
    `${Object.entries(settings)
      .map(([key, value]) => `export ${key}=${value}`)
      .join("\n")}\n`,
);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void double.stop().then(() => process.exit(0)));
}
