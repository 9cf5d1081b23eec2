import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Config } from "@kiln/config";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createLogger, type Logger } from "@kiln/logger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { ServingError } from "@kiln/serving";
import { Redis } from "ioredis";
import type { Registry } from "prom-client";
import type { StorageProvider } from "@kiln/storage";
import { cors } from "./cors.ts";
import { errorHandling } from "./errors.ts";
import { inferFastPath } from "./routes/infer-fast-path.ts";
import { type PredictionSettings, PredictionService } from "./predictions/prediction-service.ts";
import { healthRoutes } from "./routes/health.ts";
import { inferenceRoutes } from "./routes/inference.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { predictionRoutes } from "./routes/predictions.ts";
import { createServingContext, type ServingContext, type ServingSettings } from "./serving/serving-context.ts";

export type GatewayConfig = Pick<Config, "DATABASE_URL" | "REDIS_URL" | "LOG_LEVEL"> &
  Partial<Pick<Config, "REDIS_KEY_PREFIX">>;

export const DEFAULT_PREDICTION_SETTINGS: PredictionSettings = {
  retentionMs: 24 * 3600 * 1000,
  // Development only: main.ts passes WEBHOOK_SIGNING_SECRET, which production requires.
  webhookSigningKey: "kiln-dev-webhook-signing-key",
  webhookTimeoutMs: 10_000,
  // The SSRF guard is on unless KILN_WEBHOOK_ALLOW_PRIVATE says otherwise.
  webhookAllowPrivate: false,
};

export const DEFAULT_SERVING_SETTINGS = {
  coldStartTimeoutMs: 60_000,
  requestTimeoutMs: 60_000,
  replicaTtlMs: 15_000,
} as const;

/**
 * The gateway as a Fastify app, not yet listening: main.ts listens on the configured port, tests
 * on port 0. It owns its Postgres and Redis connections and closes them with the app.
 */
export function buildGateway(
  config: GatewayConfig,
  options: {
    logger?: Logger;
    serving?: Partial<Omit<ServingSettings, "keyPrefix" | "redisUrl">>;
    /** Where async predictions keep their tensors; absent: no /v1/predictions. */
    storage?: StorageProvider;
    predictions?: Partial<PredictionSettings>;
    /** Process predictions and webhooks in this gateway (default true). */
    runPredictionWorkers?: boolean;
    /** Answer plain inference requests without Fastify (default true; tests compare both). */
    inferFastPath?: boolean;
    /**
     * /metrics of a host that runs several gateway processes (cluster.ts): `registryStarted` gets
     * this process's registry once the serving context exists (the primary collects it), and `text`
     * answers a scrape with every process's series summed. Absent: this process's own registry.
     */
    metrics?: {
      registryStarted(registry: Registry): void;
      text(): Promise<{ text: string; contentType: string }>;
    };
  } = {},
): FastifyInstance {
  const logger = options.logger ?? createLogger({ service: "gateway", level: config.LOG_LEVEL });
  const prisma: PrismaClient = createPrismaClient(config.DATABASE_URL);
  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    // Fail commands at once while disconnected instead of queueing them: a request should not
    // hang because Redis is away, and readiness must report it.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    // No auto-pipelining: the hot path's scripts (admissions and usage events) go over a connection
    // of their own (serving/script-connection.ts), which writes each event-loop turn's commands in
    // one write; ioredis's auto-pipelining made a Pipeline object per write that kept about 1 MB
    // alive through every young-generation GC (scavenge pauses of 3-7 ms every ~250 ms).
    enableAutoPipelining: false,
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
  // No per-request access log: two info lines per inference are a measurable share of its cost.
  // Failures are logged by the error handler; traffic is visible in /metrics and the usage stream.
  // The server is Fastify's own (same settings), except that plain inference requests take the fast
  // path (routes/infer-fast-path.ts) and never reach Fastify; it is set once the routes exist.
  let fastPath: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  let isClosing = false;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler, opts) => {
      const server = createServer(opts.http ?? {}, (req, res) => {
        if (!fastPath?.(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = opts.keepAliveTimeout as number;
      server.requestTimeout = opts.requestTimeout as number;
      server.setTimeout(opts.connectionTimeout as number);
      const maxRequestsPerSocket = Number(opts.maxRequestsPerSocket ?? 0);
      if (maxRequestsPerSocket > 0) server.maxRequestsPerSocket = maxRequestsPerSocket;
      return server;
    },
  });
  // Requests that arrive while the gateway closes get Fastify's 503.
  app.addHook("preClose", (done) => {
    isClosing = true;
    done();
  });
  errorHandling(app);
  cors(app);
  healthRoutes(app, { prisma, redis });
  // The serving context needs Redis (the key verifier subscribes to revocations). It is created on
  // first use and again after a failure, so a gateway started while Redis is away still starts,
  // reports not-ready, and serves once Redis is back.
  let serving: Promise<{ ctx: ServingContext; predictions?: PredictionService }> | undefined;
  const getServing = () => {
    serving ??= (async () => {
      const ctx = await createServingContext(
        { prisma, redis, logger },
        {
          keyPrefix: config.REDIS_KEY_PREFIX ?? "kiln:",
          redisUrl: config.REDIS_URL,
          ...DEFAULT_SERVING_SETTINGS,
          ...options.serving,
        },
      );
      options.metrics?.registryStarted(ctx.metrics.registry);
      let predictions: PredictionService | undefined;
      if (options.storage) {
        predictions = new PredictionService(ctx, options.storage, { ...DEFAULT_PREDICTION_SETTINGS, ...options.predictions });
        if (options.runPredictionWorkers !== false) predictions.start();
      }
      return { ctx, predictions };
    })().catch((error: unknown) => {
      serving = undefined;
      throw new ServingError("UNAVAILABLE", `serving is not available: ${(error as Error).message}`, 5);
    });
    return serving;
  };
  // Once started, the context is handed out without another promise per request.
  let startedCtx: ServingContext | undefined;
  const servingContext = (): ServingContext | Promise<ServingContext> =>
    startedCtx ??
    getServing().then(({ ctx }) => {
      startedCtx = ctx;
      return ctx;
    });
  inferenceRoutes(app, servingContext);
  if (options.inferFastPath !== false) fastPath = inferFastPath(servingContext, { logger, isClosing: () => isClosing });
  metricsRoutes(app, servingContext, options.metrics?.text);
  if (options.storage) {
    predictionRoutes(app, async () => {
      const { ctx, predictions } = await getServing();
      return { ctx, predictions: predictions as PredictionService };
    });
  }
  // Start the serving side with the app, so prediction workers run without waiting for a first request.
  app.addHook("onReady", async () => {
    await getServing().catch((err) => logger.warn({ err }, "serving not started yet; retried on first request"));
  });
  app.addHook("onClose", async () => {
    const started = await serving?.catch(() => undefined);
    await started?.predictions?.close();
    await started?.ctx.close();
  });
  app.addHook("onClose", async () => {
    redis.disconnect();
    await prisma.$disconnect();
  });
  return app;
}
