// Deployments as the dashboard and the public API manage them: create from a finished build, change
// the serving policy, drain, delete; with live status from the replica registry. Every query is
// scoped by the caller's organization; another organization's id is a NOT_FOUND.
import { newId, type PrismaClient } from "@kiln/db";
import { KilnError, notFound } from "@kiln/errors";
import { currentPlanId, planFor } from "@kiln/plans";
import type { Redis } from "ioredis";
import { LoadQueue } from "../registry/load-queue.ts";
import { deploymentMinReplicasKey, ReplicaRegistry } from "../registry/replica-registry.ts";
import { ensureMinReplicas } from "./min-replicas.ts";

export interface DeploymentDeps {
  prisma: PrismaClient;
  redis: Redis;
  redisKeyPrefix: string;
}

export interface ServingPolicy {
  minReplicas: number;
  maxReplicas: number;
  idleWindowSeconds: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export type LiveStatus = "cold" | "loading" | "ready" | "failed" | "draining";

export const drainingKey = (prefix: string, deploymentId: string) => `${prefix}deployment-draining:${deploymentId}`;

async function planOf(prisma: PrismaClient, orgId: string) {
  const sub = await prisma.subscription.findUnique({
    where: { orgId },
    select: { plan: true, status: true, graceEndsAt: true },
  });
  return planFor(currentPlanId(sub));
}

function checkPolicy(policy: ServingPolicy, replicaCap: number, planName: string): void {
  if (policy.minReplicas > policy.maxReplicas) {
    throw new KilnError(
      "BAD_REQUEST",
      `minReplicas (${policy.minReplicas}) is above maxReplicas (${policy.maxReplicas})`,
    );
  }
  if (policy.maxReplicas > replicaCap) {
    throw new KilnError("FORBIDDEN", `the ${planName} plan allows at most ${replicaCap} replicas per deployment`);
  }
}

/**
 * Asks for the replicas a deployment with minReplicas > 0 keeps loaded, right away (the gateways'
 * MinReplicaKeeper would within seconds anyway, and restores them when a worker dies).
 */
async function warmUp(deps: DeploymentDeps, id: string, minReplicas?: number): Promise<void> {
  const registry = new ReplicaRegistry(deps.redis, deps.redisKeyPrefix, 0);
  // Workers' idle sweeps read it, so lowering the minimum lets idle replicas go.
  if (minReplicas !== undefined) await registry.setMinReplicas(id, minReplicas);
  if (minReplicas === 0) return;
  const connection = deps.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
  const loads = new LoadQueue(connection, deps.redisKeyPrefix);
  try {
    await ensureMinReplicas({ prisma: deps.prisma, registry, loads }, id);
  } finally {
    await loads.close();
    connection.disconnect();
  }
}

export async function createDeployment(
  deps: DeploymentDeps,
  input: { orgId: string; name: string; buildId: string } & ServingPolicy,
): Promise<{ id: string }> {
  const { prisma } = deps;
  const build = await prisma.build.findFirst({
    where: { id: input.buildId, orgId: input.orgId },
    select: { status: true },
  });
  if (!build) throw notFound("Build", input.buildId);
  if (build.status !== "succeeded")
    throw new KilnError("BAD_REQUEST", `build ${input.buildId} is ${build.status}; deploy a succeeded build`);
  const plan = await planOf(prisma, input.orgId);
  checkPolicy(input, plan.limits.replicasPerDeployment, plan.name);
  const count = await prisma.deployment.count({ where: { orgId: input.orgId } });
  if (count >= plan.limits.deployments) {
    throw new KilnError(
      "FORBIDDEN",
      `the ${plan.name} plan allows ${plan.limits.deployments} deployments; delete one or upgrade`,
    );
  }
  const taken = await prisma.deployment.findUnique({
    where: { orgId_name: { orgId: input.orgId, name: input.name } },
    select: { id: true },
  });
  if (taken) throw new KilnError("CONFLICT", `a deployment named '${input.name}' already exists`);
  const { orgId, name, buildId, ...policy } = input;
  const id = newId("dep");
  await prisma.deployment.create({ data: { id, orgId, name, buildId, ...policy } });
  await warmUp(deps, id, input.minReplicas);
  return { id };
}

export async function updateDeploymentPolicy(
  deps: DeploymentDeps,
  orgId: string,
  id: string,
  policy: Partial<ServingPolicy>,
): Promise<void> {
  const current = await deps.prisma.deployment.findFirst({ where: { id, orgId } });
  if (!current) throw notFound("Deployment", id);
  const plan = await planOf(deps.prisma, orgId);
  const next = { ...current, ...policy };
  checkPolicy(next, plan.limits.replicasPerDeployment, plan.name);
  await deps.prisma.deployment.update({ where: { id }, data: policy });
  await warmUp(deps, id, next.minReplicas);
}

/** Stops new traffic (the gateway answers 503) and tells workers to unload its replicas. */
export async function drainDeployment(deps: DeploymentDeps, orgId: string, id: string): Promise<void> {
  const { count } = await deps.prisma.deployment.updateMany({ where: { id, orgId }, data: { status: "draining" } });
  if (count === 0) throw notFound("Deployment", id);
  await deps.redis.set(drainingKey(deps.redisKeyPrefix, id), "1", "EX", 24 * 3600);
}

/** Resumes a drained deployment: its minimum replicas load again; beyond them it scales on traffic. */
export async function resumeDeployment(deps: DeploymentDeps, orgId: string, id: string): Promise<void> {
  const { count } = await deps.prisma.deployment.updateMany({ where: { id, orgId }, data: { status: "cold" } });
  if (count === 0) throw notFound("Deployment", id);
  await deps.redis.del(drainingKey(deps.redisKeyPrefix, id));
  await warmUp(deps, id);
}

/**
 * Deletes a deployment after draining it. Usage not yet reported to billing keeps it (the rollups
 * are what the invoice is built from); delete again once the hour has been reported.
 */
export async function deleteDeployment(deps: DeploymentDeps, orgId: string, id: string): Promise<void> {
  const existing = await deps.prisma.deployment.findFirst({ where: { id, orgId }, select: { id: true } });
  if (!existing) throw notFound("Deployment", id);
  await drainDeployment(deps, orgId, id);
  const unreported = await deps.prisma.usageRollup.count({ where: { orgId, deploymentId: id, reportedAt: null } });
  if (unreported > 0) {
    throw new KilnError(
      "CONFLICT",
      "the deployment has usage not yet reported to billing; it is drained and can be deleted once that hour is reported",
    );
  }
  await deps.prisma.$transaction([
    deps.prisma.usageRollup.deleteMany({ where: { orgId, deploymentId: id } }),
    deps.prisma.deployment.delete({ where: { id } }),
  ]);
  await deps.redis.del(deploymentMinReplicasKey(deps.redisKeyPrefix, id));
}

/** Deployments of an organization with their live replica count and status. */
export async function listDeployments(deps: DeploymentDeps, orgId: string) {
  const rows = await deps.prisma.deployment.findMany({
    where: { orgId },
    orderBy: { createdAt: "desc" },
    include: {
      build: {
        select: {
          id: true,
          target: true,
          modelVersion: { select: { version: true, signature: true, model: { select: { name: true } } } },
        },
      },
    },
  });
  const registry = new ReplicaRegistry(deps.redis, deps.redisKeyPrefix, 0);
  return Promise.all(
    rows.map(async (row) => {
      const replicas = await registry.list(row.id);
      const ready = replicas.filter((r) => r.status === "ready").length;
      const loading = replicas.filter((r) => r.status === "loading").length;
      const status: LiveStatus =
        row.status === "draining" || row.status === "failed"
          ? row.status
          : ready > 0
            ? "ready"
            : loading > 0
              ? "loading"
              : "cold";
      return {
        id: row.id,
        name: row.name,
        status,
        replicas: { ready, loading },
        policy: {
          minReplicas: row.minReplicas,
          maxReplicas: row.maxReplicas,
          idleWindowSeconds: row.idleWindowSeconds,
          maxBatchSize: row.maxBatchSize,
          maxQueueDelayMs: row.maxQueueDelayMs,
        },
        buildId: row.build.id,
        target: row.build.target,
        modelName: row.build.modelVersion.model.name,
        modelVersion: row.build.modelVersion.version,
        signature: row.build.modelVersion.signature,
        createdAt: row.createdAt,
      };
    }),
  );
}
