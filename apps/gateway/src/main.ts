import { loadConfigOrExit } from "@kiln/config";
import { createLogger } from "@kiln/logger";
import { createStorage } from "@kiln/storage";
import { buildGateway } from "./build-gateway.ts";

const config = loadConfigOrExit("gateway");
const logger = createLogger({ service: "gateway", level: config.LOG_LEVEL });
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
});

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    // close() stops accepting connections and waits for in-flight requests to finish.
    await app.close();
    process.exit(0);
  });
}

try {
  await app.listen({ host: config.HOST, port: config.GATEWAY_PORT });
} catch (error) {
  logger.fatal({ err: error }, "gateway failed to start");
  process.exit(1);
}
