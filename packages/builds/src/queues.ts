import { KilnError } from "@kiln/errors";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { z } from "zod";

/** Bumped when the payload changes shape, so a worker refuses jobs it does not understand. */
export const BUILD_JOB_VERSION = 1;
/** A build job carries only the build's id; the worker reads everything else from its Build row. */
export const ZBuildJob = z.object({ version: z.literal(BUILD_JOB_VERSION), buildId: z.string().min(1) });
export type BuildJob = z.infer<typeof ZBuildJob>;

/** One queue per target, so a worker takes only builds it can run. BullMQ forbids ":" in names. */
export const buildQueueName = (target: string) => `builds-${target}`;
/** BullMQ's own key prefix, under Kiln's (e.g. "kiln:bull:builds-cpu:…"). */
export const bullPrefix = (redisKeyPrefix: string) => `${redisKeyPrefix}bull`;
/** Progress and log events of one build, as a Redis stream the dashboard reads. */
export const buildEventsKey = (redisKeyPrefix: string, buildId: string) => `${redisKeyPrefix}build:${buildId}:events`;
/** Pub/sub channel on which cancellations reach the worker running the build. */
export const buildCancelChannel = (redisKeyPrefix: string) => `${redisKeyPrefix}builds:cancel`;

export type BuildEvent =
  | { id: string; type: "progress"; stage: string; fraction: number; message: string; at: string }
  | { id: string; type: "log"; level: "info" | "warn" | "error"; message: string; at: string };

export interface BuildQueues {
  enqueue(build: { id: string; target: string }): Promise<void>;
  /** Removes a build's job if it is still waiting, and tells a worker running it to stop. */
  cancel(build: { id: string; target: string }): Promise<void>;
  /** Progress and log events after `afterId` (a stream id; "0" for all). */
  events(buildId: string, afterId?: string, limit?: number): Promise<BuildEvent[]>;
  close(): Promise<void>;
}

export function createBuildQueues(options: {
  redisUrl: string;
  redisKeyPrefix: string;
  /** Connection trouble in the background; calls that fail because of it reject on their own. */
  onError?: (error: Error) => void;
}): BuildQueues {
  const onError = options.onError ?? (() => {});
  // BullMQ blocks on its connection; queues get their own rather than sharing the app's.
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  connection.on("error", onError);
  const queues = new Map<string, Queue>();
  const queueFor = (target: string) => {
    let queue = queues.get(target);
    if (!queue) {
      queue = new Queue(buildQueueName(target), { connection, prefix: bullPrefix(options.redisKeyPrefix) });
      queue.on("error", onError);
      queues.set(target, queue);
    }
    return queue;
  };

  return {
    async enqueue(build) {
      const queue = queueFor(build.target);
      // The job id is the build id, so enqueueing twice is a no-op. A retried build's old job (kept a
      // while after it finished, or still winding down after a cancel) must go first, or the id blocks it.
      for (let waited = 0; await queue.getJob(build.id); waited += 100) {
        if ((await queue.remove(build.id)) === 1) break;
        if (waited >= 10_000) {
          throw new KilnError(
            "CONFLICT",
            `Build ${build.id} is still stopping its previous attempt; retry in a moment`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await queue.add("build", { version: BUILD_JOB_VERSION, buildId: build.id } satisfies BuildJob, {
        jobId: build.id,
        // Only unexpected failures are retried; a model the builder rejects fails at once (UnrecoverableError).
        attempts: 3,
        backoff: { type: "exponential", delay: 1_000 },
        removeOnComplete: { age: 24 * 3600 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
    },
    async cancel(build) {
      await queueFor(build.target)
        .remove(build.id)
        .catch(() => 0); // active jobs are locked; the worker hears the message below
      await connection.publish(buildCancelChannel(options.redisKeyPrefix), build.id);
    },
    async events(buildId, afterId = "0", limit = 500) {
      const entries = await connection.xrange(
        buildEventsKey(options.redisKeyPrefix, buildId),
        afterId === "0" ? "-" : `(${afterId}`,
        "+",
        "COUNT",
        limit,
      );
      return entries.map(([id, fields]) => parseEvent(id, fields));
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}

function parseEvent(id: string, fields: string[]): BuildEvent {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
  const at = record.at ?? "";
  if (record.type === "progress") {
    return {
      id,
      type: "progress",
      stage: record.stage ?? "",
      fraction: Number(record.fraction ?? 0),
      message: record.message ?? "",
      at,
    };
  }
  const level = record.level === "warn" || record.level === "error" ? record.level : "info";
  return { id, type: "log", level, message: record.message ?? "", at };
}
