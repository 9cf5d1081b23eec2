// Picks a replica for each request: the least loaded ready one (by this gateway's own in-flight
// count, which is exact for its traffic, unlike heartbeats), asks for a replica when there is none
// (cold start) or when every replica has more than a batch waiting (scale up), and retries once
// elsewhere when a replica dies under a request.
import { promised } from "../callbacks.ts";
import { ServingError } from "../errors.ts";
import type { LoadJob, LoadQueue } from "../registry/load-queue.ts";
import type { ReplicaRecord, ReplicaRegistry } from "../registry/replica-registry.ts";
import { isSameHost } from "./local-socket.ts";
import {
  type AnswerCallback,
  type ForwardedAnswer,
  type ReplicaRequest,
  ReplicaUnreachableError,
  sendToReplica,
} from "./replica-client.ts";

export type ServedDeployment = Omit<LoadJob, "replicaOrdinal"> & { target: string; maxReplicas: number };

export interface RouteEvents {
  onColdStart?(deploymentId: string, waitedMs: number, ok: boolean): void;
  onScaleUp?(deploymentId: string, ordinal: number): void;
}

/** A replica's answer (ForwardedAnswer names the replica that answered). */
export type RoutedAnswer = ForwardedAnswer;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ReplicaRouter {
  readonly #cache = new Map<string, { replicas: ReplicaRecord[]; fetchedAt: number }>();
  readonly #refreshing = new Map<string, Promise<ReplicaRecord[]>>();
  readonly #inFlight = new Map<string, number>();
  readonly #lastScaleUp = new Map<string, number>();

  constructor(
    private readonly registry: ReplicaRegistry,
    private readonly loads: LoadQueue,
    private readonly options: {
      coldStartTimeoutMs: number;
      requestTimeoutMs: number;
      /** Checked about once a second during a cold start: a deployment that failed to load stops the wait. */
      whyNotServable?: (deploymentId: string) => Promise<string | null>;
      /**
       * This gateway's host identity (hostIdentity()): replicas published from the same host are
       * reached over their worker's Unix socket first. Undefined: always over TCP.
       */
      localHostId?: string;
      /** How long a registry read is reused; requests between reads use this gateway's counts. */
      registryRefreshMs?: number;
      events?: RouteEvents;
    },
  ) {}

  /** Ready replicas per deployment as last read from the registry (for metrics). */
  replicaCounts(): Map<string, number> {
    return new Map([...this.#cache].map(([id, entry]) => [id, entry.replicas.length]));
  }

  /** Ready replicas of a deployment, without asking for any (health checks are not traffic). */
  async readyReplicas(deploymentId: string): Promise<number> {
    return (await this.#ready(deploymentId)).length;
  }

  /**
   * Ready replicas from the cache. A stale, non-empty entry is returned at once while one refresh
   * per deployment runs in the background (requests never wait on the registry for a replica they
   * already know; a replica that left answers 410 or fails to connect, and the request is retried
   * on another). An empty or missing entry, or `fresh`, waits for the registry.
   */
  #ready(deploymentId: string, fresh = false): ReplicaRecord[] | Promise<ReplicaRecord[]> {
    const cached = this.#cache.get(deploymentId);
    if (!fresh && cached) {
      if (Date.now() - cached.fetchedAt < (this.options.registryRefreshMs ?? 250)) return cached.replicas;
      if (cached.replicas.length > 0) {
        this.#refresh(deploymentId).catch(() => undefined);
        return cached.replicas;
      }
    }
    return this.#refresh(deploymentId);
  }

  #refresh(deploymentId: string): Promise<ReplicaRecord[]> {
    let refreshing = this.#refreshing.get(deploymentId);
    if (!refreshing) {
      refreshing = this.registry
        .list(deploymentId)
        .then((all) => {
          const replicas = all.filter((r) => r.status === "ready");
          // A record is the endpoint it is sent to: a socket on another host (or any, with local
          // sockets off) is not offered to the client.
          for (const r of replicas) {
            if (r.socketPath !== undefined && !isSameHost(r, this.options.localHostId)) delete r.socketPath;
          }
          this.#cache.set(deploymentId, { replicas, fetchedAt: Date.now() });
          return replicas;
        })
        .finally(() => this.#refreshing.delete(deploymentId));
      this.#refreshing.set(deploymentId, refreshing);
    }
    return refreshing;
  }

  #forget(deploymentId: string, replicaId: string): void {
    const cached = this.#cache.get(deploymentId);
    if (cached) cached.replicas = cached.replicas.filter((r) => r.replicaId !== replicaId);
  }

  #leastLoaded(replicas: ReplicaRecord[], exclude?: string): ReplicaRecord | undefined {
    let best: ReplicaRecord | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const r of replicas) {
      if (r.replicaId === exclude) continue;
      const load = this.#inFlight.get(r.replicaId) ?? 0;
      if (load < bestLoad || (load === bestLoad && Math.random() < 0.5)) {
        best = r;
        bestLoad = load;
      }
    }
    return best;
  }

  async #askFor(deployment: ServedDeployment, ordinal: number): Promise<void> {
    const { target, maxReplicas, ...job } = deployment;
    if (ordinal > maxReplicas) return;
    await this.loads.request(target, { ...job, replicaOrdinal: ordinal });
  }

  /** Waits for a first ready replica, asking for one; 503 after the cold-start timeout. */
  async #coldStart(deployment: ServedDeployment): Promise<ReplicaRecord[]> {
    const started = performance.now();
    await this.#askFor(deployment, 1);
    let checkedAt = performance.now();
    while (performance.now() - started < this.options.coldStartTimeoutMs) {
      await sleep(25);
      if (this.options.whyNotServable && performance.now() - checkedAt > 1_000) {
        checkedAt = performance.now();
        const reason = await this.options.whyNotServable(deployment.deploymentId);
        if (reason) {
          this.options.events?.onColdStart?.(deployment.deploymentId, performance.now() - started, false);
          throw new ServingError("UNAVAILABLE", reason, 30);
        }
      }
      const replicas = await this.#ready(deployment.deploymentId, true);
      if (replicas.length > 0) {
        this.options.events?.onColdStart?.(deployment.deploymentId, performance.now() - started, true);
        return replicas;
      }
    }
    this.options.events?.onColdStart?.(deployment.deploymentId, performance.now() - started, false);
    throw new ServingError(
      "UNAVAILABLE",
      `deployment is starting: no replica became ready within ${this.options.coldStartTimeoutMs} ms`,
      5,
    );
  }

  #maybeScaleUp(deployment: ServedDeployment, replicas: ReplicaRecord[], chosenLoad: number): void {
    // Every replica already has more than a full batch waiting: the queue is growing.
    if (chosenLoad < deployment.maxBatchSize || replicas.length >= deployment.maxReplicas) return;
    const last = this.#lastScaleUp.get(deployment.deploymentId) ?? 0;
    if (Date.now() - last < 1_000) return;
    this.#lastScaleUp.set(deployment.deploymentId, Date.now());
    const ordinal = replicas.length + 1;
    this.options.events?.onScaleUp?.(deployment.deploymentId, ordinal);
    void this.#askFor(deployment, ordinal).catch(() => undefined);
  }

  /**
   * One inference: to the least loaded ready replica (cold-starting one when there is none), retried
   * once on another when that replica cannot be reached or was unloaded (410).
   */
  infer(deployment: ServedDeployment, request: ReplicaRequest): Promise<RoutedAnswer> {
    return promised((done: AnswerCallback) => this.inferThen(deployment, request, done));
  }

  /**
   * infer with a callback, called once and never before this returns. With the deployment's
   * replicas known (nearly every request), the request is sent at once and `done` runs when its
   * answer arrives, with no promise in between; registry reads, cold starts and the retry take
   * the promise path.
   */
  inferThen(deployment: ServedDeployment, request: ReplicaRequest, done: AnswerCallback): void {
    const known = this.#ready(deployment.deploymentId);
    if (Array.isArray(known) && known.length > 0) {
      this.#first(deployment, request, known, done);
      return;
    }
    Promise.resolve(known)
      .then((replicas) => (replicas.length > 0 ? replicas : this.#coldStart(deployment)))
      .then(
        (replicas) => this.#first(deployment, request, replicas, done),
        (error: Error) => done(error),
      );
  }

  /** The first attempt, on the least loaded of `replicas` (not empty). */
  #first(deployment: ServedDeployment, request: ReplicaRequest, replicas: ReplicaRecord[], done: AnswerCallback): void {
    const replica = this.#leastLoaded(replicas) as ReplicaRecord;
    this.#send(deployment, request, replicas, replica, (error, answer) => {
      if (error === null && answer?.status !== 410) {
        done(null, answer);
        return;
      }
      if (error !== null && !(error instanceof ReplicaUnreachableError)) {
        done(error);
        return;
      }
      // 410: the replica was unloaded after our registry read. Either way, try another one.
      this.#forget(deployment.deploymentId, replica.replicaId);
      this.#retry(deployment, request, replica.replicaId, error === null).then(
        (routed) => done(null, routed),
        (failure: Error) => done(failure),
      );
    });
  }

  /** Sends to `replica`, counting it in flight until its answer (or failure) is in. */
  #send(
    deployment: ServedDeployment,
    request: ReplicaRequest,
    replicas: ReplicaRecord[],
    replica: ReplicaRecord,
    done: AnswerCallback,
  ): void {
    const id = replica.replicaId;
    const load = this.#inFlight.get(id) ?? 0;
    this.#maybeScaleUp(deployment, replicas, load);
    this.#inFlight.set(id, load + 1);
    sendToReplica(replica, id, request, this.options.requestTimeoutMs, (error, answer) => {
      const left = (this.#inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(id, left);
      else this.#inFlight.delete(id);
      done(error, answer);
    });
  }

  /** The second and last attempt, after `failedReplica` could not be reached or was unloaded. */
  async #retry(
    deployment: ServedDeployment,
    request: ReplicaRequest,
    failedReplica: string,
    wasUnloaded: boolean,
  ): Promise<RoutedAnswer> {
    let unloaded = wasUnloaded;
    let replicas = await this.#ready(deployment.deploymentId, true);
    // The replica left on purpose (idle unload) and none is left: this is a cold start, not a failure.
    if (unloaded && replicas.every((r) => r.replicaId === failedReplica)) replicas = await this.#coldStart(deployment);
    const replica = this.#leastLoaded(replicas, failedReplica);
    if (replica) {
      try {
        const answer = await promised((done: AnswerCallback) =>
          this.#send(deployment, request, replicas, replica, done),
        );
        if (answer.status !== 410) return answer;
        unloaded = true;
      } catch (error) {
        if (!(error instanceof ReplicaUnreachableError)) throw error;
      }
      this.#forget(deployment.deploymentId, replica.replicaId);
    }
    // The only replica died: ask for a replacement now so the client's retry finds one.
    if (!unloaded) void this.#askFor(deployment, 1).catch(() => undefined);
    throw new ServingError("UNAVAILABLE", "no replica could take the request; retry shortly", 1);
  }
}
