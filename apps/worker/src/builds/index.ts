export { describeBuildFailure } from "./failure-messages.ts";
export { engineStorageKey, processBuild, SHUTTING_DOWN } from "./process-build.ts";
export { type RunningBuildWorker, startBuildWorker } from "./start-build-worker.ts";
