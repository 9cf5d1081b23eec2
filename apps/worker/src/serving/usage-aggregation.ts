// Starts the worker's usage aggregation (UsageAggregator, exactly-once rollups) on a worker thread.
// On the serving event loop, each pass (a stream read of a few hundred events, their decoding, a
// Prisma transaction and the XACK) held the loop for several milliseconds in a row, and its batches
// lived long enough to be promoted into the old generation, so every pass and the GC after it
// delayed the inferences that arrived meanwhile. The thread has its own event loop and heap; the
// aggregator's semantics (receipts, ack after commit, claims) are the same code.
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Logger } from "@kiln/logger";

export interface AggregationThreadData {
  redisUrl: string;
  databaseUrl: string;
  keyPrefix: string;
  /** Unique per process: pending entries are tracked per consumer. */
  consumer: string;
  settleMs: number;
}

export type AggregationThreadMessage =
  | { type: "error" | "warn"; message: string; stack?: string }
  | { type: "stopped" };

export interface RunningAggregation {
  /** Lets the pass in progress finish (its commit and ack), then closes the thread's connections. */
  stop(): Promise<void>;
}

/** How long a thread that died is left before it is started again. */
const RESTART_MS = 1_000;
/** How long stop() waits for the thread to finish its pass before terminating it. */
const STOP_TIMEOUT_MS = 15_000;

// The worker runs under tsx (`node --import tsx`), whose loader hooks are not inherited by threads
// on Node 20: the thread registers them itself before it imports its TypeScript entry.
const ENTRY = new URL("./usage-aggregation-thread.ts", import.meta.url).href;
const BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY)}); });`;

export async function startUsageAggregation(data: AggregationThreadData, logger: Logger): Promise<RunningAggregation> {
  // The thread lowers its own CPU priority, which threads it starts inherit: libuv's thread pool
  // (the engine runs inferences on it) must already exist, started from this thread. Any
  // asynchronous file operation starts it.
  await stat(fileURLToPath(ENTRY));
  let stopping = false;
  let thread: Worker | undefined;
  let restart: NodeJS.Timeout | undefined;

  const start = () => {
    const started = new Worker(BOOT, { eval: true, workerData: data, name: "usage-aggregation" });
    thread = started;
    started.on("message", (message: AggregationThreadMessage) => {
      if (message.type === "stopped") return;
      const err = Object.assign(new Error(message.message), { stack: message.stack });
      if (message.type === "warn") logger.warn({ err }, "aggregator redis error");
      else logger.error({ err }, "usage aggregation failed; retrying");
    });
    started.on("error", (err) => logger.error({ err }, "usage aggregation thread failed"));
    started.on("exit", (code) => {
      if (thread === started) thread = undefined;
      if (stopping) return;
      logger.error({ code }, "usage aggregation thread exited; restarting it");
      restart = setTimeout(start, RESTART_MS);
    });
  };
  start();

  return {
    async stop() {
      stopping = true;
      clearTimeout(restart);
      const running = thread;
      if (!running) return;
      const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
      const timeout = setTimeout(() => void running.terminate(), STOP_TIMEOUT_MS);
      running.postMessage("stop");
      await exited;
      clearTimeout(timeout);
    },
  };
}
