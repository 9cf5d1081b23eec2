import type { Config } from "@kiln/config";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createLogger, type Logger } from "@kiln/logger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { healthRoutes } from "./routes/health.ts";

export type GatewayConfig = Pick<Config, "DATABASE_URL" | "REDIS_URL" | "LOG_LEVEL">;

/**
 * The gateway as a Fastify app, not yet listening: main.ts listens on the configured port, tests
 * on port 0. It owns its Postgres and Redis connections and closes them with the app.
 */
export function buildGateway(config: GatewayConfig, options: { logger?: Logger } = {}): FastifyInstance {
  const logger = options.logger ?? createLogger({ service: "gateway", level: config.LOG_LEVEL });
  const prisma: PrismaClient = createPrismaClient(config.DATABASE_URL);
  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    // Fail commands at once while disconnected instead of queueing them: a request should not
    // hang because Redis is away, and readiness must report it.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let lastRedisError = "";
  redis.on("error", (error) => {
    // ioredis repeats the same error on every reconnect attempt; log each kind once.
    if (error.message !== lastRedisError) logger.warn({ err: error }, "redis connection error");
    lastRedisError = error.message;
  });
  redis.on("ready", () => {
    lastRedisError = "";
  });
  redis.connect().catch(() => {
    // Reported through the error event and readiness; the retry strategy keeps trying.
  });

  // Fastify types its logger narrower than pino's; a pino logger is what it uses at run time.
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger });
  healthRoutes(app, { prisma, redis });
  app.addHook("onClose", async () => {
    redis.disconnect();
    await prisma.$disconnect();
  });
  return app;
}
