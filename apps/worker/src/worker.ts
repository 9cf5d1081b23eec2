import { randomBytes } from "node:crypto";
import { freemem, hostname } from "node:os";
import type { Config } from "@kiln/config";
import type { Logger } from "@kiln/logger";
import { Redis } from "ioredis";

export type WorkerConfig = Pick<
  Config,
  "REDIS_URL" | "REDIS_KEY_PREFIX" | "WORKER_TARGET" | "WORKER_SLOT" | "WORKER_ID" | "WORKER_HEARTBEAT_MS"
>;

/** What a worker publishes about itself; the gateway and schedulers read it to find capacity. */
export type WorkerRegistration = {
  id: string;
  target: string;
  slot: string;
  hostname: string;
  pid: number;
  freeMemoryBytes: number;
  startedAt: string;
  heartbeatAt: string;
};

export type RunningWorker = { id: string; key: string; stop: () => Promise<void> };

export const workerKey = (prefix: string, id: string) => `${prefix}worker:${id}`;

/**
 * Registers the worker in Redis and keeps the registration alive. The key expires after three
 * missed heartbeats, so a worker that dies without cleaning up drops out of the registry on its own.
 */
export async function startWorker(config: WorkerConfig, logger: Logger): Promise<RunningWorker> {
  const id = config.WORKER_ID ?? `${hostname()}-${randomBytes(3).toString("hex")}`;
  const key = workerKey(config.REDIS_KEY_PREFIX, id);
  const ttlMs = config.WORKER_HEARTBEAT_MS * 3;
  const startedAt = new Date().toISOString();
  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    // A heartbeat that cannot be sent now is worthless later; fail it instead of queueing it.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  await redis.connect();

  const beat = async () => {
    const registration: WorkerRegistration = {
      id,
      target: config.WORKER_TARGET,
      slot: config.WORKER_SLOT,
      hostname: hostname(),
      pid: process.pid,
      // For a CPU slot host memory is the budget; GPU slots will report the engine arena's free bytes.
      freeMemoryBytes: freemem(),
      startedAt,
      heartbeatAt: new Date().toISOString(),
    };
    await redis.set(key, JSON.stringify(registration), "PX", ttlMs);
  };

  await beat();
  logger.info({ id, key, target: config.WORKER_TARGET, slot: config.WORKER_SLOT }, "worker registered");

  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    inFlight = beat().catch((error) => logger.warn({ err: error }, "heartbeat failed"));
  }, config.WORKER_HEARTBEAT_MS);

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      clearInterval(timer);
      await inFlight;
      // Leave the registry now rather than when the key expires, so nothing is routed to us meanwhile.
      await redis.del(key).catch((error) => logger.warn({ err: error }, "could not remove registration"));
      await redis.quit().catch(() => redis.disconnect());
      logger.info({ id }, "worker stopped");
    })();
    return stopped;
  };
  return { id, key, stop };
}
