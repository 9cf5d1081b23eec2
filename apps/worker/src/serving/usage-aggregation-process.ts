// The worker's UsageAggregator in a process of its own (started by usage-aggregation.ts), so its
// stream reads, event decoding and Prisma transactions never hold the event loop that answers
// inferences, its batches of events (which live across a transaction) never enter that heap, and
// every thread that works for it runs at the lowest CPU priority (see below).
// Messages (IPC): { type: "ready" } to the parent once this process listens, the AggregationData
// back, later "stop"; to the parent also { type: "error" | "warn", message, stack } and
// { type: "stopped" } once the aggregator, Redis and Prisma are closed. The process exits when the
// parent goes away (the IPC channel closes).
import { readdirSync } from "node:fs";
import { constants, setPriority } from "node:os";
import { createPrismaClient } from "@kiln/db";
import { UsageAggregator } from "@kiln/metering";
import { Redis } from "ioredis";
import type { AggregationData, AggregationMessage } from "./usage-aggregation.ts";

// Background work: every thread of this process yields the CPU to the serving process and the other
// processes on the inference path, so a fold runs in idle time instead of delaying requests. All of
// them: Linux nice values are per thread, and V8's compiler and GC helper threads (which do this
// heap's scavenges, marking and optimizing compiles) and libuv's pool were started with the process,
// before this code ran; threads started later inherit the value from the thread that starts them.
// (On a worker thread, as before, the aggregator's GC and compile work ran on the serving process's
// V8 helper threads at normal priority.) Elsewhere (no /proc/self/task) the process's own priority.
function lowerPriority(): void {
  try {
    setPriority(constants.priority.PRIORITY_LOW);
  } catch {}
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      try {
        setPriority(Number(tid), constants.priority.PRIORITY_LOW);
      } catch {} // a thread that exited meanwhile
    }
  } catch {}
}
lowerPriority();

const post = (message: AggregationMessage) => {
  if (process.connected) process.send?.(message);
};
const report = (type: "error" | "warn", error: unknown) =>
  post({ type, message: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack });

let stop: (() => Promise<void>) | undefined;
let stopping = false;

function start(data: AggregationData): void {
  const prisma = createPrismaClient(data.databaseUrl);
  // A blocking stream read holds its connection: the aggregator has one of its own.
  const redis = new Redis(data.redisUrl, { maxRetriesPerRequest: null });
  redis.on("error", (error) => report("warn", error));
  const aggregator = new UsageAggregator({
    redis,
    prisma,
    keyPrefix: data.keyPrefix,
    consumer: data.consumer,
    settleMs: data.settleMs,
  }).start((error) => report("error", error));
  stop = async () => {
    await aggregator.stop();
    redis.disconnect();
    await prisma.$disconnect();
  };
}

/** Lets the pass in progress finish (its commit and ack), closes the connections, and exits. */
async function finish(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await stop?.();
  } catch (error) {
    report("error", error);
  }
  post({ type: "stopped" });
  process.exit(0);
}

process.on("message", (message: unknown) => {
  if (message === "stop") void finish();
  else if (stop === undefined && !stopping && typeof message === "object" && message !== null) {
    start(message as AggregationData);
  }
});
// The worker went away (killed, crashed): its aggregator does not outlive it.
process.on("disconnect", () => void finish());
post({ type: "ready" });
