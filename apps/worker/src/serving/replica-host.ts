// The replicas one worker hosts: loads engines for load jobs that fit its slot, keeps them in the
// registry with heartbeats, batches their requests and unloads them after their idle window.
import { randomBytes } from "node:crypto";
import { loadEngine } from "@kiln/engine";
import type { Logger } from "@kiln/logger";
import { DynamicBatcher, type LoadJob, type ReplicaRecord, type ReplicaRegistry } from "@kiln/serving";
import type { EngineSource } from "./engine-source.ts";

export interface HostedReplica {
  replicaId: string;
  job: LoadJob;
  batcher: DynamicBatcher;
  memoryBytes: number;
  loadedAt: string;
  lastRequestAt: number;
  status: "ready" | "draining";
  inFlight: number;
}

export class NoRoomError extends Error {}

export class ReplicaHost {
  readonly replicas = new Map<string, HostedReplica>();
  /** Base URL of this worker's serving endpoint, set once it listens. */
  url = "";
  /** Its Unix socket and this host's identity, published with each replica; undefined: TCP only. */
  local: { socketPath: string; hostId: string } | undefined;

  constructor(
    private readonly options: {
      workerId: string;
      slotMemoryBytes: number;
      registry: ReplicaRegistry;
      engines: EngineSource;
      logger: Logger;
    },
  ) {}

  get usedMemoryBytes(): number {
    let used = 0;
    for (const r of this.replicas.values()) used += r.memoryBytes;
    return used;
  }

  /** Whether this slot should take the job: it has room and does not already host the deployment. */
  canTake(job: LoadJob): boolean {
    const hostsIt = [...this.replicas.values()].some((r) => r.job.deploymentId === job.deploymentId);
    return !hostsIt && this.usedMemoryBytes + job.requiredMemoryBytes <= this.options.slotMemoryBytes;
  }

  async load(job: LoadJob): Promise<HostedReplica> {
    if (!this.canTake(job)) throw new NoRoomError(`slot cannot take deployment ${job.deploymentId}`);
    const started = performance.now();
    const replicaId = `rep_${randomBytes(8).toString("hex")}`;
    // Visible as "loading" while the engine loads, so the dashboard can say so; never routed to.
    await this.options.registry.publish({
      replicaId,
      deploymentId: job.deploymentId,
      workerId: this.options.workerId,
      url: this.url,
      ...this.local,
      status: "loading",
      queueDepth: 0,
      loadedAt: new Date().toISOString(),
      heartbeatAt: new Date().toISOString(),
    });
    let bytes: Uint8Array;
    try {
      bytes = await this.options.engines(job.engineStorageKey);
    } catch (error) {
      await this.options.registry.remove(job.deploymentId, replicaId);
      throw error;
    }
    let engine: ReturnType<typeof loadEngine>;
    try {
      engine = loadEngine(bytes);
    } catch (error) {
      await this.options.registry.remove(job.deploymentId, replicaId);
      throw error;
    }
    const context = engine.createContext();
    const replica: HostedReplica = {
      replicaId,
      job,
      batcher: new DynamicBatcher(context, { maxBatchSize: job.maxBatchSize, maxQueueDelayMs: job.maxQueueDelayMs }),
      memoryBytes: engine.deviceMemoryBytes + engine.weightBytes,
      loadedAt: new Date().toISOString(),
      lastRequestAt: Date.now(),
      status: "ready",
      inFlight: 0,
    };
    this.replicas.set(replica.replicaId, replica);
    await this.options.registry.publish(this.#record(replica));
    this.options.logger.info(
      { deploymentId: job.deploymentId, replicaId: replica.replicaId, ms: Math.round(performance.now() - started) },
      "replica loaded",
    );
    return replica;
  }

  #record(r: HostedReplica): ReplicaRecord {
    return {
      replicaId: r.replicaId,
      deploymentId: r.job.deploymentId,
      workerId: this.options.workerId,
      url: this.url,
      ...this.local,
      status: r.status,
      queueDepth: r.batcher.queueDepth,
      loadedAt: r.loadedAt,
      heartbeatAt: new Date().toISOString(),
    };
  }

  async heartbeat(): Promise<void> {
    await Promise.all(
      [...this.replicas.values()]
        .filter((r) => r.status === "ready")
        .map((r) => this.options.registry.publish(this.#record(r))),
    );
  }

  /**
   * Unloads replicas idle past their window, keeping the deployment's minimum. Only requests count
   * as traffic: health checks never reach a worker.
   */
  async unloadIdle(now = Date.now()): Promise<void> {
    for (const r of this.replicas.values()) {
      if (r.status !== "ready") continue;
      // A drained deployment leaves at once (in-flight requests finish first, in unload()).
      if (await this.options.registry.isDraining(r.job.deploymentId)) {
        await this.unload(r.replicaId, "drained");
        continue;
      }
      if (r.inFlight > 0) continue;
      if (now - r.lastRequestAt < r.job.idleWindowSeconds * 1000) continue;
      // The policy's current minimum (it may have changed since this replica's load job).
      const minReplicas = (await this.options.registry.minReplicas(r.job.deploymentId)) ?? r.job.minReplicas;
      const live = await this.options.registry.list(r.job.deploymentId);
      if (live.filter((l) => l.status === "ready").length <= minReplicas) continue;
      await this.unload(r.replicaId, "idle");
    }
  }

  /** Leaves the registry first (no new traffic), then lets queued requests finish. */
  async unload(replicaId: string, reason: string): Promise<void> {
    const r = this.replicas.get(replicaId);
    if (!r) return;
    r.status = "draining";
    await this.options.registry.remove(r.job.deploymentId, replicaId);
    while (r.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    this.replicas.delete(replicaId);
    this.options.logger.info({ deploymentId: r.job.deploymentId, replicaId, reason }, "replica unloaded");
  }

  async unloadAll(reason: string): Promise<void> {
    await Promise.all([...this.replicas.keys()].map((id) => this.unload(id, reason)));
  }
}
