import { createStripeClient, isBillingConfigured } from "@kiln/billing";
import type { Config } from "@kiln/config";
import { createPrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { runBillingTick } from "./billing-tick.ts";

export const BILLING_QUEUE = "kiln-billing";
const TICK_SCHEDULER_ID = "billing-tick";

export type RunningBillingWorker = { stop: () => Promise<void> };

/**
 * Runs the billing tick as a BullMQ repeatable job. Every worker process registers the same job
 * scheduler (upsert: one schedule however many workers start) and takes the jobs, so the tick keeps
 * running while any worker is up, once per interval. Without Stripe configured there is nothing to do.
 */
export async function startBillingWorker(
  config: Config,
  logger: Logger,
  options: { everyMs?: number } = {},
): Promise<RunningBillingWorker> {
  if (!isBillingConfigured(config)) {
    logger.info("billing is not configured (no STRIPE_SECRET_KEY): usage is not reported to Stripe");
    return { stop: async () => {} };
  }
  const prisma = createPrismaClient(config.DATABASE_URL, { maxConnections: 2 });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
  const bullConnection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  for (const connection of [redis, bullConnection]) {
    connection.on("error", (error) => logger.warn({ err: error }, "billing worker redis error"));
  }
  const deps = { prisma, redis, redisKeyPrefix: config.REDIS_KEY_PREFIX, stripe: createStripeClient(config), config };
  const prefix = `${config.REDIS_KEY_PREFIX}bull`;
  const queue = new Queue(BILLING_QUEUE, { connection: bullConnection, prefix });
  await queue.upsertJobScheduler(
    TICK_SCHEDULER_ID,
    { every: options.everyMs ?? 60_000 },
    { name: "billing-tick", opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
  const worker = new Worker(
    BILLING_QUEUE,
    async () => {
      const report = await runBillingTick(deps);
      if (report.enqueued + report.sent + report.retrying + report.failed + report.downgraded > 0) {
        logger.info(report, "billing tick");
      }
      return report;
    },
    { connection: bullConnection, prefix, concurrency: 1 },
  );
  worker.on("failed", (_job, error) => logger.error({ err: error }, "billing tick failed"));
  worker.on("error", (error) => logger.warn({ err: error }, "billing queue error"));
  await worker.waitUntilReady();
  return {
    async stop() {
      await worker.close();
      await queue.close();
      await bullConnection.quit().catch(() => bullConnection.disconnect());
      await redis.quit().catch(() => redis.disconnect());
      await prisma.$disconnect();
    },
  };
}
