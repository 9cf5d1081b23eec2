// Async predictions: POST /v1/predictions, GET /v1/predictions/:id, POST /v1/predictions/:id/cancel.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { PredictionService } from "../predictions/prediction-service.ts";
import type { ServingContext } from "../serving/serving-context.ts";
import { MAX_BODY_BYTES } from "./inference.ts";

const MAX_WAIT_SECONDS = 60;

/** Prefer: wait=N (RFC 7240), capped; absent or malformed means do not wait. */
function preferredWait(header: string | string[] | undefined): number {
  const match = /(?:^|[,;\s])wait=(\d+)/.exec([header ?? ""].flat().join(","));
  return match ? Math.min(Number(match[1]), MAX_WAIT_SECONDS) : 0;
}

export function predictionRoutes(
  app: FastifyInstance,
  serving: () => Promise<{ ctx: ServingContext; predictions: PredictionService }>,
): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (_req, body, done) =>
      done(null, body),
    );

    scope.post("/v1/predictions", async (req: FastifyRequest<{ Body: Buffer }>, reply: FastifyReply) => {
      const { ctx, predictions } = await serving();
      const key = await ctx.authenticate(req.headers.authorization);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let view = await predictions.create(key, body);
      const wait = preferredWait(req.headers.prefer);
      if (wait > 0) {
        view = await predictions.wait(key.orgId, view.id, wait);
        reply.header("preference-applied", `wait=${wait}`);
      }
      reply.header("location", `/v1/predictions/${view.id}`);
      return reply.code(view.status === "succeeded" || view.status === "failed" ? 201 : 202).send(view);
    });

    scope.get("/v1/predictions/:id", async (req: FastifyRequest<{ Params: { id: string } }>) => {
      const { ctx, predictions } = await serving();
      const key = await ctx.authenticate(req.headers.authorization);
      const wait = preferredWait(req.headers.prefer);
      return wait > 0 ? predictions.wait(key.orgId, req.params.id, wait) : predictions.get(key.orgId, req.params.id);
    });

    scope.post("/v1/predictions/:id/cancel", async (req: FastifyRequest<{ Params: { id: string } }>) => {
      const { ctx, predictions } = await serving();
      const key = await ctx.authenticate(req.headers.authorization);
      return predictions.cancel(key.orgId, req.params.id);
    });
  });
}
