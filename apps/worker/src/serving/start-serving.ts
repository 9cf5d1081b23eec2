// Serving side of a worker: an HTTP endpoint for its replicas, a BullMQ consumer of load jobs for
// its target, replica heartbeats and the idle sweep.
import type { AddressInfo } from "node:net";
import type { Logger } from "@kiln/logger";
import {
  bullPrefix,
  hostIdentity,
  type LoadJob,
  type LocalSocketSetting,
  loadQueueName,
  localSocketSetting,
  ReplicaRegistry,
} from "@kiln/serving";
import { Worker as BullWorker, DelayedError } from "bullmq";
import { Redis } from "ioredis";
import type { EngineSource } from "./engine-source.ts";
import { ReplicaHost } from "./replica-host.ts";
import { createServingServer } from "./serving-server.ts";

export interface ServingOptions {
  workerId: string;
  redisUrl: string;
  keyPrefix: string;
  target: string;
  heartbeatMs: number;
  /** Address the serving endpoint listens on and the host gateways use to reach it. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * A Unix socket for gateways on this host, besides the port (default: on, in the OS temporary
   * folder; SERVING_UNIX_SOCKET, SERVING_SOCKET_DIR). One that cannot be opened is logged and skipped.
   */
  localSocket?: LocalSocketSetting;
  /** Memory this slot may give engines (activations + weights); a job that does not fit waits for another slot. */
  slotMemoryBytes: number;
  engines: EngineSource;
  logger: Logger;
  /** A load job failed for the last time (the engine cannot be read or loaded here). */
  onLoadFailed?: (job: LoadJob, error: Error) => Promise<void>;
}

export interface RunningServing {
  url: string;
  /** The Unix socket it also listens on; undefined when off or when it could not be opened. */
  socketPath: string | undefined;
  host: ReplicaHost;
  stop: () => Promise<void>;
}

export async function startServing(options: ServingOptions): Promise<RunningServing> {
  const { logger } = options;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  redis.on("error", (error) => logger.warn({ err: error }, "serving redis error"));
  const registry = new ReplicaRegistry(redis, options.keyPrefix, options.heartbeatMs * 3);

  const replicaHost = new ReplicaHost({
    workerId: options.workerId,
    slotMemoryBytes: options.slotMemoryBytes,
    registry,
    engines: options.engines,
    logger,
  });
  const server = createServingServer(replicaHost);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  const url = `http://${options.host}:${(server.address() as AddressInfo).port}`;
  // Replicas are published with this URL (and socket), so it is known before the first load job is taken.
  replicaHost.url = url;
  const localSocket = options.localSocket ?? localSocketSetting({ SERVING_UNIX_SOCKET: true });
  let socketPath: string | undefined;
  if (localSocket.isEnabled) {
    try {
      socketPath = await server.listenOnSocket(localSocket.dir);
      replicaHost.local = { socketPath, hostId: hostIdentity() };
    } catch (error) {
      logger.warn({ err: error, dir: localSocket.dir }, "no Unix socket for gateways on this host; TCP only");
    }
  }

  const loadWorker = new BullWorker<LoadJob>(
    loadQueueName(options.target),
    async (job, token) => {
      if (!replicaHost.canTake(job.data)) {
        // Not for this slot (full, or it already hosts the deployment): hand it back for another one.
        await job.moveToDelayed(Date.now() + 250, token);
        throw new DelayedError();
      }
      const replica = await replicaHost.load(job.data);
      return { replicaId: replica.replicaId, workerId: options.workerId };
    },
    {
      connection: redis.duplicate({ maxRetriesPerRequest: null }),
      prefix: bullPrefix(options.keyPrefix),
      concurrency: 1,
    },
  );
  loadWorker.on("failed", (job, error) => {
    logger.warn({ err: error, jobId: job?.id }, "load job failed");
    const isFinal = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    if (job && isFinal) {
      options.onLoadFailed?.(job.data, error).catch((err) => logger.error({ err }, "could not record the failed load"));
    }
  });

  const beat = setInterval(() => {
    replicaHost.heartbeat().catch((error) => logger.warn({ err: error }, "replica heartbeat failed"));
  }, options.heartbeatMs);
  const sweep = setInterval(
    () => {
      replicaHost.unloadIdle().catch((error) => logger.warn({ err: error }, "idle sweep failed"));
    },
    Math.min(1_000, options.heartbeatMs),
  );

  logger.info({ url, socketPath, target: options.target }, "serving endpoint listening");
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      clearInterval(beat);
      clearInterval(sweep);
      await loadWorker.close();
      await replicaHost.unloadAll("shutdown");
      server.closeMuxConnections();
      await Promise.all([new Promise((resolve) => server.close(resolve)), server.closeSocket()]);
      server.closeAllConnections();
      redis.disconnect();
    })();
    return stopped;
  };
  return { url, socketPath, host: replicaHost, stop };
}
