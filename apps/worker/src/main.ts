import { loadConfigOrExit } from "@kiln/config";
import { createLogger } from "@kiln/logger";
import { startWorker } from "./worker.ts";

const config = loadConfigOrExit("worker");
const logger = createLogger({ service: "worker", level: config.LOG_LEVEL });

let worker: Awaited<ReturnType<typeof startWorker>>;
try {
  worker = await startWorker(config, logger);
} catch (error) {
  logger.fatal({ err: error }, "worker failed to start");
  process.exit(1);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    logger.info({ signal }, "shutting down");
    await worker.stop();
    process.exit(0);
  });
}
