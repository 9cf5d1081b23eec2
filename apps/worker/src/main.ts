import { loadConfigOrExit } from "@kiln/config";
import { createLogger } from "@kiln/logger";
import { type RunningBillingWorker, startBillingWorker } from "./billing/index.ts";
import { type RunningBuildWorker, startBuildWorker } from "./builds/index.ts";
import { type RunningServing, startServingFromConfig } from "./serving/index.ts";
import { startWorker } from "./worker.ts";

const config = loadConfigOrExit("worker");
const logger = createLogger({ service: "worker", level: config.LOG_LEVEL });

let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
let serving: RunningServing | undefined;
let billing: RunningBillingWorker | undefined;
let builds: RunningBuildWorker | undefined;
const startup = (async () => {
  worker = await startWorker(config, logger);
  serving = await startServingFromConfig(config, worker.id, logger);
  billing = await startBillingWorker(config, logger);
  builds = await startBuildWorker(config, worker.id, logger);
})();

// Installed before start-up finishes: a signal during start-up waits for it, then stops what started.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    logger.info({ signal }, "shutting down");
    await startup.catch(() => {});
    await builds?.stop();
    await billing?.stop();
    await serving?.stop();
    await worker?.stop();
    process.exit(0);
  });
}

try {
  await startup;
} catch (error) {
  logger.fatal({ err: error }, "worker failed to start");
  process.exit(1);
}
