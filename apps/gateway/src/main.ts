import cluster from "node:cluster";
import { loadConfigOrExit } from "@kiln/config";
import { createLogger } from "@kiln/logger";
import { createStorage } from "@kiln/storage";
import type { Registry } from "prom-client";
import { buildGateway } from "./build-gateway.ts";
import { clusterWorkerMetrics, gatewayProcesses, isGatewayClusterWorker, runPrimary } from "./cluster.ts";

const config = loadConfigOrExit("gateway");
const logger = createLogger({ service: "gateway", level: config.LOG_LEVEL });

let processes: number;
try {
  processes = gatewayProcesses();
} catch (error) {
  logger.fatal((error as Error).message);
  process.exit(1);
}

if (processes > 1 && cluster.isPrimary) {
  // Several gateway processes (GATEWAY_PROCESSES) sharing the port: cluster.ts.
  runPrimary({ processes, logger });
} else {
  await serve();
}

async function serve() {
  // A process forked by runPrimary answers /metrics for the whole host (its primary sums every
  // process's series); one forked by another cluster primary (a process manager's) answers for itself.
  let registry: Registry | undefined;
  const hostMetrics = isGatewayClusterWorker() ? clusterWorkerMetrics(() => registry) : undefined;
  const app = buildGateway(config, {
    logger,
    serving: {
      coldStartTimeoutMs: config.COLD_START_TIMEOUT_MS,
      replicaTtlMs: config.WORKER_HEARTBEAT_MS * 3,
      localSockets: config.SERVING_UNIX_SOCKET,
    },
    storage: createStorage(config),
    predictions: {
      retentionMs: config.PREDICTION_RETENTION_HOURS * 3600 * 1000,
      webhookAllowPrivate: config.KILN_WEBHOOK_ALLOW_PRIVATE,
      ...(config.WEBHOOK_SIGNING_SECRET ? { webhookSigningKey: config.WEBHOOK_SIGNING_SECRET } : {}),
    },
    ...(hostMetrics
      ? {
          metrics: {
            registryStarted: (r: Registry) => {
              registry = r;
            },
            text: () => hostMetrics.text(),
          },
        }
      : {}),
  });

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, "shutting down");
    // close() stops accepting connections and waits for in-flight requests to finish.
    await app.close();
    hostMetrics?.close();
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void stop(signal));
  // A worker whose primary is gone (killed outright) drains and exits instead of serving unsupervised.
  if (hostMetrics) process.on("disconnect", () => void stop("the primary process is gone"));

  try {
    await app.listen({ host: config.HOST, port: config.GATEWAY_PORT });
  } catch (error) {
    logger.fatal({ err: error }, "gateway failed to start");
    process.exit(1);
  }
}
