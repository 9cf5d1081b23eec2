export { type RunningWorker, startWorker, type WorkerConfig, type WorkerRegistration, workerKey } from "./worker.ts";
