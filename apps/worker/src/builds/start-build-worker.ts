import { type BuildJob, buildCancelChannel, buildQueueName, bullPrefix, ZBuildJob } from "@kiln/builds";
import type { Config } from "@kiln/config";
import { createPrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import { createStorage } from "@kiln/storage";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { processBuild, SHUTTING_DOWN } from "./process-build.ts";

export type RunningBuildWorker = { stop: () => Promise<void> };

/**
 * Takes build jobs of this worker's target, one at a time (a build uses every core it can). The
 * job lock is renewed while a build runs; when the process dies the lock lapses after BUILD_LOCK_MS,
 * BullMQ's stalled-job check (run by every build worker) puts the job back, and another worker
 * (or this one, restarted) builds it again.
 */
export async function startBuildWorker(config: Config, workerId: string, logger: Logger): Promise<RunningBuildWorker> {
  const prisma = createPrismaClient(config.DATABASE_URL, { maxConnections: 2 });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
  const subscriber = new Redis(config.REDIS_URL);
  const bullConnection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  for (const connection of [redis, subscriber, bullConnection]) {
    connection.on("error", (error) => logger.warn({ err: error }, "build worker redis error"));
  }
  const running = new Map<string, AbortController>();
  const deps = {
    prisma,
    redis,
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    storage: createStorage(config),
    logger,
    workerId,
    running,
  };

  subscriber.on("message", (_channel: string, buildId: string) => running.get(buildId)?.abort());
  await subscriber.subscribe(buildCancelChannel(config.REDIS_KEY_PREFIX));

  const worker = new Worker(
    buildQueueName(config.WORKER_TARGET),
    async (job: Job) => {
      const payload = ZBuildJob.safeParse(job.data);
      if (!payload.success) {
        // Queued by another Kiln version: retrying cannot make it readable, so say so on the build.
        const buildId = (job.data as { buildId?: unknown })?.buildId;
        if (typeof buildId === "string") {
          await prisma.build.updateMany({
            where: { id: buildId, status: { in: ["queued", "running"] } },
            data: {
              status: "failed",
              finishedAt: new Date(),
              error: "This build was queued by another version of Kiln: retry it.",
            },
          });
        }
        throw new UnrecoverableError(`unreadable build job ${job.id}: ${payload.error.message}`);
      }
      await processBuild(job as Job<BuildJob>, deps);
    },
    {
      connection: bullConnection,
      prefix: bullPrefix(config.REDIS_KEY_PREFIX),
      concurrency: 1,
      lockDuration: config.BUILD_LOCK_MS,
      stalledInterval: config.BUILD_LOCK_MS,
      maxStalledCount: 2,
    },
  );
  worker.on("error", (error) => logger.warn({ err: error }, "build queue error"));
  await worker.waitUntilReady();
  logger.info({ queue: buildQueueName(config.WORKER_TARGET) }, "taking build jobs");

  return {
    async stop() {
      // A build can take minutes; stop it now and let the job be retried (here after a restart, or elsewhere).
      for (const controller of running.values()) controller.abort(SHUTTING_DOWN);
      await worker.close();
      await subscriber.quit().catch(() => subscriber.disconnect());
      await redis.quit().catch(() => redis.disconnect());
      await bullConnection.quit().catch(() => bullConnection.disconnect());
      await prisma.$disconnect();
    },
  };
}
