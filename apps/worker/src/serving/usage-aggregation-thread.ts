// The worker's UsageAggregator on a thread of its own (started by usage-aggregation.ts), so its
// stream reads, event decoding and Prisma transactions never hold the event loop that answers
// inferences, and its batches of events (which live across a transaction) never enter that heap.
// Messages from the parent: "stop". To the parent: { type: "error" | "warn", message, stack } and
// { type: "stopped" } once the aggregator, Redis and Prisma are closed.
import { readlinkSync } from "node:fs";
import { constants, setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { createPrismaClient } from "@kiln/db";
import { UsageAggregator } from "@kiln/metering";
import { Redis } from "ioredis";
import type { AggregationThreadData, AggregationThreadMessage } from "./usage-aggregation.ts";

const data = workerData as AggregationThreadData;

// Background work: this thread (only it: Linux nice values are per thread, and libuv's thread pool
// was started from the main thread before this one, see usage-aggregation.ts) yields the CPU to the
// serving thread and the other processes on the inference path, so a fold runs in idle time
// instead of delaying requests. Elsewhere (no /proc/thread-self) it runs at normal priority.
try {
  const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, constants.priority.PRIORITY_LOW);
} catch {}
const post = (message: AggregationThreadMessage) => parentPort?.postMessage(message);
const report = (type: "error" | "warn", error: unknown) =>
  post({ type, message: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack });

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

parentPort?.on("message", async (message: unknown) => {
  if (message !== "stop") return;
  await aggregator.stop();
  redis.disconnect();
  await prisma.$disconnect();
  post({ type: "stopped" });
  parentPort?.close();
});
