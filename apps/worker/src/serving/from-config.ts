// Starts a worker's serving side (replica host + usage aggregator) from its validated config.
import type { Config } from "@kiln/config";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import { type LoadJob, localSocketSetting } from "@kiln/serving";
import { createStorage } from "@kiln/storage";
import { type RunningServing, startServing } from "./start-serving.ts";
import { startUsageAggregation } from "./usage-aggregation.ts";

/**
 * What a worker does when a deployment's engine cannot be loaded (after the job's retries): the
 * deployment becomes "failed", so the gateway answers 503 with that at once instead of holding
 * requests for a replica that cannot come. Resuming the deployment clears it.
 */
export function markDeploymentFailed(prisma: PrismaClient, logger: Logger) {
  return async (job: LoadJob, error: Error) => {
    await prisma.deployment.updateMany({
      where: { id: job.deploymentId, status: { not: "draining" } },
      data: { status: "failed" },
    });
    logger.error({ err: error, deploymentId: job.deploymentId }, "deployment failed to load");
  };
}

export async function startServingFromConfig(
  config: Config,
  workerId: string,
  logger: Logger,
): Promise<RunningServing> {
  const storage = createStorage(config);
  const prisma = createPrismaClient(config.DATABASE_URL);
  const serving = await startServing({
    workerId,
    redisUrl: config.REDIS_URL,
    keyPrefix: config.REDIS_KEY_PREFIX,
    target: config.WORKER_TARGET,
    heartbeatMs: config.WORKER_HEARTBEAT_MS,
    host: config.SERVING_HOST,
    port: config.SERVING_PORT,
    localSocket: localSocketSetting(config),
    slotMemoryBytes: config.SERVING_SLOT_MEMORY_BYTES,
    engines: (key) => storage.getBytes(key),
    logger,
    onLoadFailed: markDeploymentFailed(prisma, logger),
  });
  // Every worker also folds usage events into rollups; the consumer group shares the stream among
  // them. On a thread of its own: a fold's Redis read and Postgres transaction hold an event loop for
  // milliseconds, and this process's loop answers inferences.
  const aggregation = await startUsageAggregation(
    {
      redisUrl: config.REDIS_URL,
      databaseUrl: config.DATABASE_URL,
      keyPrefix: config.REDIS_KEY_PREFIX,
      consumer: workerId,
      // Under steady traffic, fold about four times a second rather than once per trickle of events:
      // rollups are hourly, and each fold is a Postgres transaction.
      settleMs: 250,
    },
    logger,
  );
  return {
    ...serving,
    async stop() {
      await serving.stop();
      await aggregation.stop();
      await prisma.$disconnect();
    },
  };
}
