// Starts the worker's usage aggregation (UsageAggregator, exactly-once rollups) in a child process.
// On the serving event loop, each pass (a stream read of a few hundred events, their decoding, a
// Prisma transaction and the XACK) held the loop for several milliseconds in a row, and its batches
// lived long enough to be promoted into the old generation, so every pass and the GC after it
// delayed the inferences that arrived meanwhile. A worker thread kept it off the loop, but its heap's
// scavenges (most of a fold's batch survives them), marking and optimizing compiles ran on the
// process's shared V8 helper threads at normal priority, next to the inferences' own. In a process of
// its own every thread that works for it runs at the lowest priority (usage-aggregation-process.ts);
// the aggregator's semantics (receipts, ack after commit, claims) are the same code.
import { type ChildProcess, spawn } from "node:child_process";
import type { Logger } from "@kiln/logger";

export interface AggregationData {
  redisUrl: string;
  databaseUrl: string;
  keyPrefix: string;
  /** Unique per process: pending entries are tracked per consumer. */
  consumer: string;
  settleMs: number;
}

export type AggregationMessage =
  | { type: "error" | "warn"; message: string; stack?: string }
  | { type: "ready" | "stopped" };

export interface RunningAggregation {
  /** The aggregation process's id (undefined between a crash and its restart). */
  readonly pid: number | undefined;
  /** Lets the pass in progress finish (its commit and ack), then closes the process's connections. */
  stop(): Promise<void>;
}

/** How long a process that died is left before it is started again. */
const RESTART_MS = 1_000;
/** How long stop() waits for the process to finish its pass before killing it. */
const STOP_TIMEOUT_MS = 15_000;

// The worker runs TypeScript under tsx; the process registers tsx's hooks itself before it imports
// its TypeScript entry (the same whether the worker was started by `node --import tsx`, the tsx CLI
// or a test runner). Its data goes over the IPC channel, not the command line (the database URL
// carries credentials).
const ENTRY = new URL("./usage-aggregation-process.ts", import.meta.url).href;
const BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY)}); });`;

export async function startUsageAggregation(data: AggregationData, logger: Logger): Promise<RunningAggregation> {
  let stopping = false;
  let child: ChildProcess | undefined;
  let restart: NodeJS.Timeout | undefined;
  const ready = new WeakSet<ChildProcess>();

  const start = () => {
    const started = spawn(process.execPath, ["--input-type=module", "-e", BOOT], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "json",
    });
    child = started;
    started.on("message", (message: AggregationMessage) => {
      // Messages sent before the process listens would be lost: it asks for its data when it does.
      if (message.type === "ready") {
        ready.add(started);
        started.send(data);
        return;
      }
      if (message.type !== "error" && message.type !== "warn") return;
      const err = Object.assign(new Error(message.message), { stack: message.stack });
      if (message.type === "warn") logger.warn({ err }, "aggregator redis error");
      else logger.error({ err }, "usage aggregation failed; retrying");
    });
    started.on("error", (err) => logger.error({ err }, "usage aggregation process failed"));
    started.on("exit", (code, signal) => {
      if (child === started) child = undefined;
      if (stopping) return;
      logger.error({ code, signal }, "usage aggregation process exited; restarting it");
      restart = setTimeout(start, RESTART_MS);
    });
  };
  start();

  return {
    get pid() {
      return child?.pid;
    },
    async stop() {
      stopping = true;
      clearTimeout(restart);
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
      const timeout = setTimeout(() => running.kill("SIGKILL"), STOP_TIMEOUT_MS);
      // Not started yet (no data, no pass in progress): ended at once.
      if (ready.has(running) && running.connected) running.send("stop");
      else running.kill("SIGTERM");
      await exited;
      clearTimeout(timeout);
    },
  };
}
