// Warm replicas: a deployment with minReplicas N keeps N replicas loaded without waiting for
// traffic. Load jobs are asked for when the policy is set (create, update, resume) and a keeper
// (one per gateway) compares the registry with every such deployment every few seconds and asks
// again for what is missing: a replica whose worker died is restored. Job ids
// (`load-<deployment>-<ordinal>`) make the asks of many gateways one job per missing replica.
import type { PrismaClient } from "@kiln/db";
import { currentPlanId, planFor } from "@kiln/plans";
import type { LoadQueue } from "../registry/load-queue.ts";
import type { ReplicaRegistry } from "../registry/replica-registry.ts";

export interface MinReplicaDeps {
  prisma: PrismaClient;
  registry: ReplicaRegistry;
  loads: LoadQueue;
}

const deploymentSelect = {
  id: true,
  orgId: true,
  minReplicas: true,
  maxReplicas: true,
  idleWindowSeconds: true,
  maxBatchSize: true,
  maxQueueDelayMs: true,
  status: true,
  build: { select: { id: true, target: true, engineStorageKey: true, deviceMemoryBytes: true } },
  org: { select: { subscription: { select: { plan: true, status: true, graceEndsAt: true } } } },
} as const;

type WarmDeployment = {
  id: string;
  orgId: string;
  minReplicas: number;
  maxReplicas: number;
  idleWindowSeconds: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  status: string;
  build: { id: string; target: string; engineStorageKey: string | null; deviceMemoryBytes: bigint | null };
  org: { subscription: { plan: string; status: string; graceEndsAt: Date | null } | null };
};

/** How many replicas should stay loaded: minReplicas within maxReplicas and the plan's cap. */
function wanted(d: WarmDeployment): number {
  if (d.status === "draining" || d.status === "failed" || !d.build.engineStorageKey) return 0;
  const sub = d.org.subscription;
  const plan = planFor(
    currentPlanId(sub ? { plan: sub.plan, status: sub.status as never, graceEndsAt: sub.graceEndsAt } : null),
  );
  return Math.min(d.minReplicas, d.maxReplicas, plan.limits.replicasPerDeployment);
}

/** Asks for the replicas a deployment is missing (loading ones count as present); returns how many. */
async function topUp(deps: MinReplicaDeps, d: WarmDeployment): Promise<number> {
  const want = wanted(d);
  if (want <= 0) return 0;
  const live = (await deps.registry.list(d.id)).filter((r) => r.status === "ready" || r.status === "loading");
  let asked = 0;
  for (let ordinal = live.length + 1; ordinal <= want; ordinal++) {
    await deps.loads.request(d.build.target, {
      deploymentId: d.id,
      orgId: d.orgId,
      buildId: d.build.id,
      engineStorageKey: d.build.engineStorageKey ?? "",
      requiredMemoryBytes: Number(d.build.deviceMemoryBytes ?? 0),
      maxBatchSize: d.maxBatchSize,
      maxQueueDelayMs: d.maxQueueDelayMs,
      idleWindowSeconds: d.idleWindowSeconds,
      minReplicas: d.minReplicas,
      replicaOrdinal: ordinal,
    });
    asked++;
  }
  return asked;
}

/** Brings one deployment up to its minimum now (after create, update or resume). */
export async function ensureMinReplicas(deps: MinReplicaDeps, deploymentId: string): Promise<number> {
  const d = await deps.prisma.deployment.findUnique({ where: { id: deploymentId }, select: deploymentSelect });
  return d ? topUp(deps, d as WarmDeployment) : 0;
}

/** Every deployment with a minimum, once: what the keeper runs on its interval. */
export async function ensureAllMinReplicas(deps: MinReplicaDeps): Promise<number> {
  const rows = await deps.prisma.deployment.findMany({
    where: { minReplicas: { gt: 0 }, status: { notIn: ["draining", "failed"] } },
    select: deploymentSelect,
  });
  let asked = 0;
  for (const d of rows) asked += await topUp(deps, d as WarmDeployment);
  return asked;
}

/** Runs ensureAllMinReplicas every `intervalMs` until stopped; errors are reported and retried. */
export class MinReplicaKeeper {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(
    private readonly deps: MinReplicaDeps,
    private readonly options: { intervalMs: number; onError?: (error: unknown) => void },
  ) {}

  start(): void {
    if (this.#timer) return;
    const tick = () => {
      this.#running ??= ensureAllMinReplicas(this.deps)
        .catch((error) => this.options.onError?.(error))
        .finally(() => {
          this.#running = undefined;
        });
    };
    tick();
    this.#timer = setInterval(tick, this.options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
