// Load jobs: "bring up one more replica of this deployment". One BullMQ queue per worker target, so
// only workers that can run the engine see the job; a worker whose slot lacks the memory hands it back.
import { Queue } from "bullmq";
import type { Redis } from "ioredis";

export interface LoadJob {
  deploymentId: string;
  orgId: string;
  buildId: string;
  engineStorageKey: string;
  /** Exact activation memory plus weights, from the build: what the slot must have free. */
  requiredMemoryBytes: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  idleWindowSeconds: number;
  minReplicas: number;
  /** The replica count this job brings the deployment to; dedupes concurrent asks for the same one. */
  replicaOrdinal: number;
}

export const loadQueueName = (target: string) => `serving-load-${target}`;
export const bullPrefix = (keyPrefix: string) => `${keyPrefix}bull`;

export class LoadQueue {
  readonly #queues = new Map<string, Queue<LoadJob>>();
  constructor(
    private readonly connection: Redis,
    private readonly keyPrefix: string,
  ) {}

  #queue(target: string): Queue<LoadJob> {
    let queue = this.#queues.get(target);
    if (!queue) {
      queue = new Queue<LoadJob>(loadQueueName(target), {
        connection: this.connection,
        prefix: bullPrefix(this.keyPrefix),
      });
      this.#queues.set(target, queue);
    }
    return queue;
  }

  /**
   * Asks for replica number `job.replicaOrdinal`. The job id makes concurrent asks (many gateways,
   * many requests) one job; finished jobs are removed so the same ordinal can be asked for again
   * after the replica was unloaded.
   */
  async request(target: string, job: LoadJob): Promise<void> {
    await this.#queue(target).add("load", job, {
      jobId: `load-${job.deploymentId}-${job.replicaOrdinal}`,
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 3,
      backoff: { type: "exponential", delay: 500 },
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
  }
}
