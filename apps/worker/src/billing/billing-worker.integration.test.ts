import { ensureStripeCustomer, meterEventIdentifier } from "@kiln/billing";
import { type BillingHarness, startBillingHarness, TEST_STRIPE_CONFIG } from "@kiln/billing/testing";
import { loadConfig } from "@kiln/config";
import { newId } from "@kiln/db";
import { seedDeployment } from "@kiln/db/testing";
import { createLogger } from "@kiln/logger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBillingWorker, startBillingWorker } from "./start-billing-worker.ts";

describe("the billing worker", () => {
  let h: BillingHarness;
  let worker: RunningBillingWorker;
  beforeAll(async () => {
    h = await startBillingHarness();
    const double = new URL(h.double.url);
    const config = loadConfig({
      DATABASE_URL: h.db.url,
      REDIS_URL: process.env.REDIS_URL,
      REDIS_KEY_PREFIX: h.deps.redisKeyPrefix,
      LOG_LEVEL: "silent",
      ...Object.fromEntries(Object.entries(TEST_STRIPE_CONFIG).map(([k, v]) => [k, String(v)])),
      STRIPE_API_HOST: double.hostname,
      STRIPE_API_PORT: double.port,
      STRIPE_API_PROTOCOL: "http",
    });
    worker = await startBillingWorker(config, createLogger({ service: "worker", level: "silent" }), { everyMs: 200 });
  });
  afterAll(async () => {
    await worker?.stop();
    await h?.close();
  });

  it("reports closed usage hours to Stripe's meters on its repeatable job", async () => {
    const { prisma } = h.deps;
    const orgId = await h.seedOrg();
    const customerId = await ensureStripeCustomer(h.deps, orgId);
    const { deploymentId } = await seedDeployment(prisma, { orgId, name: "prod" });
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000);
    const rollup = await prisma.usageRollup.create({
      data: { id: newId("use"), orgId, deploymentId, hour, requests: 77n, gpuMilliseconds: 4_200n },
    });

    // The job runs every 200 ms; wait for the rollup to be reported, then for a few more runs.
    while ((await prisma.usageRollup.findUniqueOrThrow({ where: { id: rollup.id } })).reportedAt === null) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(77);
    expect(h.double.meteredTotal(customerId, "kiln_compute_seconds")).toBe(4.2);
    expect(h.double.meterEventAttempts(meterEventIdentifier(rollup.id, "requests"))).toBe(1);
  });
});
