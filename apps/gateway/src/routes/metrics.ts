import type { FastifyInstance } from "fastify";
import type { ServingContext } from "../serving/serving-context.ts";

/**
 * Prometheus scrape endpoint; like health, it needs no key (expose it only to the scraper's network).
 * `hostText`, on a host of several gateway processes, answers for all of them (cluster.ts).
 */
export function metricsRoutes(
  app: FastifyInstance,
  serving: () => ServingContext | Promise<ServingContext>,
  hostText?: () => Promise<{ text: string; contentType: string }>,
): void {
  app.get("/metrics", async (_req, reply) => {
    if (hostText) {
      const { text, contentType } = await hostText();
      reply.header("content-type", contentType);
      return text;
    }
    const ctx = await serving();
    reply.header("content-type", ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
