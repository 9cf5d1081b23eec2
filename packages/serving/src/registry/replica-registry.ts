// The replica registry in Redis. Each replica is one key with a TTL of three heartbeats (a dead
// worker's replicas vanish on their own); a set per deployment lists replica ids for lookup, and
// readers prune ids whose key has expired.
import type { Redis } from "ioredis";

export type ReplicaStatus = "loading" | "ready" | "draining";

export interface ReplicaRecord {
  replicaId: string;
  deploymentId: string;
  workerId: string;
  /** Base URL of the worker's serving endpoint, e.g. http://10.0.0.5:7070. */
  url: string;
  /** The worker's Unix socket, for gateways on the same host (absent: the worker listens on TCP only). */
  socketPath?: string;
  /** The worker's host (hostIdentity()): a gateway tries socketPath only when its own is the same. */
  hostId?: string;
  status: ReplicaStatus;
  /** Requests queued or running on the replica at the last heartbeat. */
  queueDepth: number;
  loadedAt: string;
  heartbeatAt: string;
}

export const replicaKey = (prefix: string, replicaId: string) => `${prefix}replica:${replicaId}`;
export const deploymentReplicasKey = (prefix: string, deploymentId: string) =>
  `${prefix}deployment-replicas:${deploymentId}`;

export const deploymentMinReplicasKey = (prefix: string, deploymentId: string) =>
  `${prefix}deployment-min-replicas:${deploymentId}`;

export class ReplicaRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  async publish(record: ReplicaRecord): Promise<void> {
    await this.redis
      .multi()
      .set(replicaKey(this.prefix, record.replicaId), JSON.stringify(record), "PX", this.ttlMs)
      .sadd(deploymentReplicasKey(this.prefix, record.deploymentId), record.replicaId)
      .exec();
  }

  async remove(deploymentId: string, replicaId: string): Promise<void> {
    await this.redis
      .multi()
      .del(replicaKey(this.prefix, replicaId))
      .srem(deploymentReplicasKey(this.prefix, deploymentId), replicaId)
      .exec();
  }

  /** Set by drainDeployment: workers unload the deployment's replicas. */
  async isDraining(deploymentId: string): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}deployment-draining:${deploymentId}`)) === 1;
  }

  /**
   * The deployment's current minReplicas, written whenever its policy is set: loaded replicas carry
   * the value of their load job, which a later policy change must override. null: never written.
   */
  async minReplicas(deploymentId: string): Promise<number | null> {
    const value = await this.redis.get(deploymentMinReplicasKey(this.prefix, deploymentId));
    return value === null ? null : Number(value);
  }

  async setMinReplicas(deploymentId: string, minReplicas: number): Promise<void> {
    await this.redis.set(deploymentMinReplicasKey(this.prefix, deploymentId), String(minReplicas));
  }

  /** Live replicas of a deployment (any status); expired ones are pruned from the set. */
  async list(deploymentId: string): Promise<ReplicaRecord[]> {
    const setKey = deploymentReplicasKey(this.prefix, deploymentId);
    const ids = await this.redis.smembers(setKey);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => replicaKey(this.prefix, id)));
    const dead = ids.filter((_, i) => values[i] === null);
    if (dead.length > 0) await this.redis.srem(setKey, ...dead);
    return values.flatMap((v) => (v === null ? [] : [JSON.parse(v) as ReplicaRecord]));
  }
}
