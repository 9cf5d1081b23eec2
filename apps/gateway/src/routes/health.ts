import type { PrismaClient } from "@kiln/db";
import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import { checkPostgres, checkRedis } from "../health-checks.ts";

/**
 * KServe v2 health endpoints. Live: the process answers. Ready: it can serve, which needs both
 * Postgres (keys, deployments) and Redis (registry, quotas); a 503 names what failed so that an
 * operator reading a load balancer's log knows where to look.
 */
export function healthRoutes(app: FastifyInstance, deps: { prisma: PrismaClient; redis: Redis }): void {
  app.get("/v2/health/live", async () => ({ live: true }));

  app.get("/v2/health/ready", async (request, reply) => {
    const [postgres, redis] = await Promise.all([checkPostgres(deps.prisma), checkRedis(deps.redis)]);
    const checks = { postgres, redis };
    const failed = Object.entries(checks)
      .filter(([, result]) => !result.ok)
      .map(([name]) => name);
    if (failed.length > 0) {
      request.log.warn({ checks }, `not ready: ${failed.join(", ")} unavailable`);
      return reply.code(503).send({ ready: false, failed, checks });
    }
    return { ready: true, checks };
  });
}
