import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrismaClient, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { Redis } from "ioredis";
import type { BillingDeps } from "../deps.ts";
import { createStripeClient } from "../stripe-client.ts";
import { handleStripeWebhook } from "../webhook/handle-stripe-webhook.ts";
import { StripeDouble } from "./stripe-double.ts";
import { TEST_STRIPE_CONFIG } from "./test-stripe-config.ts";

export { TEST_STRIPE_CONFIG };

export type BillingHarness = {
  deps: BillingDeps;
  double: StripeDouble;
  db: TestDatabase;
  /** Moves Kiln's clock (deps.now) and Stripe's together. */
  advance: (seconds: number) => void;
  seedOrg: (name?: string) => Promise<string>;
  /** A local HTTP endpoint that runs the webhook as the web app's route does; the double delivers there. */
  webhookUrl: string;
  close: () => Promise<void>;
};

/**
 * Real Postgres (a fresh database), real Redis (a private key prefix), the Stripe double over HTTP
 * and the real SDK pointed at it, and a webhook endpoint the double delivers signed events to.
 */
export async function startBillingHarness(): Promise<BillingHarness> {
  const db = await createTestDatabase();
  const prisma: PrismaClient = createPrismaClient(db.url, { maxConnections: 5 });
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const double = new StripeDouble({
    secretKey: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
    webhookSecret: TEST_STRIPE_CONFIG.STRIPE_WEBHOOK_SECRET,
    priceAmounts: { price_pro_monthly: 4900, price_enterprise_monthly: 49900 },
  });
  const address = await double.start();
  const stripe = createStripeClient({
    STRIPE_SECRET_KEY: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
    STRIPE_API_HOST: address.host,
    STRIPE_API_PORT: address.port,
    STRIPE_API_PROTOCOL: address.protocol,
  });
  let offsetSeconds = 0;
  const deps: BillingDeps = {
    prisma,
    redis,
    redisKeyPrefix: `kiln-test-${randomBytes(4).toString("hex")}:`,
    stripe,
    config: TEST_STRIPE_CONFIG,
    now: () => new Date(Date.now() + offsetSeconds * 1000),
  };
  const receiver = await startWebhookReceiver(deps);
  double.setWebhookUrl(receiver.url);
  return {
    deps,
    double,
    db,
    webhookUrl: receiver.url,
    advance: (seconds) => {
      offsetSeconds += seconds;
      double.advance(seconds);
    },
    seedOrg: async (name = "Acme") => {
      const id = newId("org");
      await prisma.organization.create({ data: { id, name, slug: id.toLowerCase() } });
      return id;
    },
    close: async () => {
      await double.settled();
      await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
      await double.stop();
      await redis.quit();
      await prisma.$disconnect();
      await db.drop();
    },
  };
}

/** An HTTP endpoint that hands the raw body and signature to handleStripeWebhook, as the web route does. */
export async function startWebhookReceiver(deps: BillingDeps): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const signature = req.headers["stripe-signature"];
    const result = await handleStripeWebhook(
      deps,
      Buffer.concat(chunks),
      typeof signature === "string" ? signature : null,
    );
    res.writeHead(result.status, { "content-type": "application/json" });
    res.end(JSON.stringify(result.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/stripe/webhook`, server };
}
