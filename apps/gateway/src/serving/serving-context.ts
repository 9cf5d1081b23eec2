// Everything the inference routes share: key verification, deployment lookup, plans and quotas,
// routing to replicas, metering and metrics. Built once per gateway.
import {
  type ApiKeyIdentity,
  type ApiKeyVerifier,
  apiKeyFromAuthorizationHeader,
  createApiKeyVerifier,
  type VerifyApiKeyResult,
} from "@kiln/api-keys";
import type { PrismaClient } from "@kiln/db";
import type { Logger } from "@kiln/logger";
import { QuotaEnforcer } from "@kiln/metering";
import { hostIdentity, LoadQueue, MinReplicaKeeper, ReplicaRegistry, ReplicaRouter, ServingError } from "@kiln/serving";
import type { Redis } from "ioredis";
import { RequestAdmission } from "./admission.ts";
import { DeploymentResolver } from "./deployment-resolver.ts";
import { createGatewayMetrics, type GatewayMetrics } from "./gateway-metrics.ts";
import { OrgPlans } from "./org-plans.ts";
import { ScriptConnection } from "./script-connection.ts";

export interface ServingSettings {
  keyPrefix: string;
  /** The Redis the gateway's ioredis connection uses; admission and metering open their own to it. */
  redisUrl: string;
  /** How long a request waits for a first replica of a scaled-to-zero deployment. */
  coldStartTimeoutMs: number;
  /** How long a replica may take to answer one request. */
  requestTimeoutMs: number;
  /** Replica registry TTL: three worker heartbeats. */
  replicaTtlMs: number;
  /** How often deployments with minReplicas > 0 are checked for missing replicas (default 3 s; 0: never). */
  minReplicaCheckMs?: number;
  /**
   * Reach workers on this host over their Unix socket (default true; SERVING_UNIX_SOCKET). A host
   * identity of its own replaces this host's (tests: a gateway "on another host").
   */
  localSockets?: boolean | { hostId: string };
}

export interface ServingContext {
  settings: ServingSettings;
  prisma: PrismaClient;
  redis: Redis;
  verifier: ApiKeyVerifier;
  deployments: DeploymentResolver;
  plans: OrgPlans;
  quotas: QuotaEnforcer;
  /** Quotas + spend cap in one round trip, and metering in one more. */
  admission: RequestAdmission;
  router: ReplicaRouter;
  loads: LoadQueue;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The key's identity: at once when the verifier has the key cached, else once it is looked up. */
  authenticate(authorization: string | undefined): ApiKeyIdentity | Promise<ApiKeyIdentity>;
  close(): Promise<void>;
}

/** The identity of a verified key with the inference scope; ServingError (401, 403) otherwise. */
function identityFor(result: VerifyApiKeyResult): ApiKeyIdentity {
  if (!result.ok) throw new ServingError("UNAUTHENTICATED", result.message);
  if (!result.key.scopes.includes("inference") && !result.key.scopes.includes("admin")) {
    throw new ServingError("FORBIDDEN", "this API key lacks the 'inference' scope");
  }
  return result.key;
}

function localHostIdOf(localSockets: ServingSettings["localSockets"]): string | undefined {
  if (localSockets === false) return undefined;
  return typeof localSockets === "object" ? localSockets.hostId : hostIdentity();
}

export async function createServingContext(
  deps: { prisma: PrismaClient; redis: Redis; logger: Logger },
  settings: ServingSettings,
): Promise<ServingContext> {
  const { prisma, redis, logger } = deps;
  const verifier = await createApiKeyVerifier({
    prisma,
    redis,
    redisKeyPrefix: settings.keyPrefix,
    onError: (error, context) => logger.warn({ err: error }, context),
  });
  // The admission and metering scripts' own connection; a gateway that cannot reach Redis does not start serving.
  let lastScriptError = "";
  const scripts = new ScriptConnection(settings.redisUrl, (error) => {
    // A reconnecting connection repeats its error; log each kind once.
    if (error.message !== lastScriptError) logger.warn({ err: error }, "redis connection error (admission)");
    lastScriptError = error.message;
  });
  try {
    await scripts.whenReady();
  } catch (error) {
    await verifier.close();
    await scripts.close();
    throw error;
  }
  const plans = new OrgPlans(prisma);
  const registry = new ReplicaRegistry(redis, settings.keyPrefix, settings.replicaTtlMs);
  // BullMQ needs a connection that queues commands while reconnecting; the gateway's own fails fast.
  const bullConnection = redis.duplicate({
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    enableAutoPipelining: false,
  });
  const loads = new LoadQueue(bullConnection, settings.keyPrefix);
  let metrics: GatewayMetrics | undefined;
  const router = new ReplicaRouter(registry, loads, {
    coldStartTimeoutMs: settings.coldStartTimeoutMs,
    requestTimeoutMs: settings.requestTimeoutMs,
    localHostId: localHostIdOf(settings.localSockets),
    async whyNotServable(deploymentId) {
      const row = await prisma.deployment.findUnique({
        where: { id: deploymentId },
        select: { name: true, status: true },
      });
      if (!row) return "the deployment was deleted";
      return row.status === "failed" || row.status === "draining"
        ? `model '${row.name}' is ${row.status} and cannot serve`
        : null;
    },
    events: {
      onColdStart(deployment, waitedMs, ok) {
        metrics?.coldStarts.inc({ deployment, outcome: ok ? "ready" : "timeout" });
        metrics?.coldStartDuration.observe({ deployment }, waitedMs / 1000);
      },
      onScaleUp(deployment) {
        metrics?.scaleUps.inc({ deployment });
      },
    },
  });
  metrics = createGatewayMetrics(() => router.replicaCounts());
  // Warm replicas (minReplicas > 0) are asked for here, and again whenever one goes missing.
  const keeper = new MinReplicaKeeper(
    { prisma, registry, loads },
    {
      intervalMs: settings.minReplicaCheckMs ?? 3_000,
      onError: (err) => logger.warn({ err }, "min-replica check failed"),
    },
  );
  if (settings.minReplicaCheckMs !== 0) keeper.start();
  const admission = new RequestAdmission(scripts, redis, prisma, settings.keyPrefix, logger);
  const deployments = new DeploymentResolver(prisma, {
    replicaCap: async (orgId) => (await plans.standing(orgId)).plan.limits.replicasPerDeployment,
  });

  return {
    settings,
    prisma,
    redis,
    verifier,
    deployments,
    plans,
    quotas: new QuotaEnforcer(redis, settings.keyPrefix),
    admission,
    router,
    loads,
    metrics,
    logger,
    authenticate(authorization) {
      const token = apiKeyFromAuthorizationHeader(authorization);
      if (!token) {
        return Promise.reject(
          new ServingError("UNAUTHENTICATED", "missing API key: send Authorization: Bearer kiln_live_..."),
        );
      }
      // Cached keys (nearly every request) are answered without a promise.
      const known = verifier.verifyCached(token);
      if (known) {
        try {
          return identityFor(known);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      return verifier.verify(token).then(identityFor);
    },
    async close() {
      await admission.close();
      await keeper.stop();
      await verifier.close();
      await loads.close();
      bullConnection.disconnect();
    },
  };
}
