import type { FastifyInstance } from "fastify";
import type { ServingContext } from "../serving/serving-context.ts";

/** Prometheus scrape endpoint; like health, it needs no key (expose it only to the scraper's network). */
export function metricsRoutes(app: FastifyInstance, serving: () => ServingContext | Promise<ServingContext>): void {
  app.get("/metrics", async (_req, reply) => {
    const ctx = await serving();
    reply.header("content-type", ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
