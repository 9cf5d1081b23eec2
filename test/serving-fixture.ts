// A real serving stack for end-to-end tests: a migrated database with two organizations, a dense
// model built into a CPU engine on disk, API keys, a worker's serving side and a gateway on real ports.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApiKey } from "@kiln/api-keys";
import { createPrismaClient, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedBuild, type TestDatabase } from "@kiln/db/testing";
import { build } from "@kiln/engine";
import { buildGateway } from "@kiln/gateway";
import { createLogger } from "@kiln/logger";
import type { LoadQueue } from "@kiln/serving";
import { createFsStorage } from "@kiln/storage";
import { fsEngineSource, markDeploymentFailed, type RunningServing, startServing } from "@kiln/worker/serving";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { denseModel, denseProfile } from "../packages/engine/src/testing/models.ts";
import { tempDir } from "./support.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const WEBHOOK_SIGNING_KEY = "test-webhook-signing-key-0123456789abcdef";
export const logger = createLogger({ service: "serving-test", level: "silent" });

export interface Org {
  id: string;
  key: string;
  keyId: string;
}

export interface ServingStack {
  db: TestDatabase;
  prisma: PrismaClient;
  redis: Redis;
  keyPrefix: string;
  artifactDir: string;
  /** The settings a Kiln process (gateway, worker) started beside this stack needs to join it. */
  processEnv: Record<string, string>;
  gatewayUrl: string;
  gateway: FastifyInstance;
  workers: RunningServing[];
  orgA: Org;
  orgB: Org;
  /** Deployment "dense" of org A. */
  deploymentId: string;
  addOrg(plan: string): Promise<Org>;
  addDeployment(orgId: string, name: string, overrides?: Record<string, number>): Promise<string>;
  startWorker(overrides?: { slotMemoryBytes?: number; heartbeatMs?: number }): Promise<RunningServing>;
  close(): Promise<void>;
}

/**
 * The environment of a gateway process (apps/gateway/src/main.ts, as production runs it) that joins
 * `stack` and listens on `port` with `processes` processes (GATEWAY_PROCESSES).
 */
export function gatewayProcessEnv(stack: ServingStack, port: number, processes: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...stack.processEnv,
    HOST: "127.0.0.1",
    GATEWAY_PORT: String(port),
    GATEWAY_PROCESSES: String(processes),
  };
}

/**
 * Asks `loads` for replica `ordinal` of a deployment as the gateway's cold start would, with a long
 * idle window (tests decide when replicas go) and no device memory (the CPU engine).
 */
export async function requestReplica(
  stack: ServingStack,
  loads: LoadQueue,
  deploymentId: string,
  ordinal: number,
): Promise<void> {
  const dep = await stack.prisma.deployment.findUniqueOrThrow({
    where: { id: deploymentId },
    include: { build: true },
  });
  await loads.request("cpu", {
    deploymentId,
    orgId: dep.orgId,
    buildId: dep.buildId,
    engineStorageKey: dep.build.engineStorageKey ?? "",
    requiredMemoryBytes: 0,
    maxBatchSize: dep.maxBatchSize,
    maxQueueDelayMs: dep.maxQueueDelayMs,
    idleWindowSeconds: 600,
    minReplicas: 0,
    replicaOrdinal: ordinal,
  });
}

export async function startServingStack(
  options: { coldStartTimeoutMs?: number; webhookAllowPrivate?: boolean } = {},
): Promise<ServingStack> {
  const db = await createTestDatabase();
  const prisma = createPrismaClient(db.url);
  const redis = new Redis(REDIS_URL);
  const keyPrefix = `test:${randomBytes(4).toString("hex")}:`;
  const artifacts = tempDir("kiln-serving-");

  // One engine, built once, stored where the fs artifact store keeps objects.
  const { engine } = await build(denseModel(), { profiles: [denseProfile(1, 4, 64)] });
  const engineKey = `engines/${newId("bld")}.kiln`;
  mkdirSync(join(artifacts.path, "engines"), { recursive: true });
  writeFileSync(join(artifacts.path, engineKey), engine);

  const addOrg = async (plan: string): Promise<Org> => {
    const id = newId("org");
    await prisma.organization.create({ data: { id, name: id, slug: id.toLowerCase() } });
    await prisma.subscription.create({
      data: { id: newId("sub"), orgId: id, stripeCustomerId: `cus_${id}`, plan, status: "active" },
    });
    const { key, apiKey } = await createApiKey({ prisma }, { orgId: id, name: "test", scopes: ["inference"] });
    return { id, key, keyId: apiKey.id };
  };

  const addDeployment = async (orgId: string, name: string, overrides: Record<string, number> = {}) => {
    const { buildId } = await seedBuild(prisma, orgId, {
      modelName: name,
      version: {
        sha256: "0".repeat(64),
        sizeBytes: 100n,
        filename: "dense.onnx",
        signature: {
          inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }],
          outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
        },
      },
      build: {
        profiles: [denseProfile(1, 4, 64)],
        status: "succeeded",
        builderVersion: "test",
        engineStorageKey: engineKey,
        engineSizeBytes: BigInt(engine.byteLength),
        deviceMemoryBytes: 0n,
      },
    });
    const id = newId("dep");
    await prisma.deployment.create({
      data: {
        id,
        orgId,
        name,
        buildId,
        minReplicas: 0,
        maxReplicas: 2,
        maxBatchSize: 8,
        maxQueueDelayMs: 2,
        ...overrides,
      },
    });
    return id;
  };

  const orgA = await addOrg("enterprise");
  const orgB = await addOrg("enterprise");
  const deploymentId = await addDeployment(orgA.id, "dense");

  const workers: RunningServing[] = [];
  const startWorker = async (overrides: { slotMemoryBytes?: number; heartbeatMs?: number } = {}) => {
    const worker = await startServing({
      workerId: `w-${randomBytes(3).toString("hex")}`,
      redisUrl: REDIS_URL,
      keyPrefix,
      target: "cpu",
      heartbeatMs: overrides.heartbeatMs ?? 500,
      host: "127.0.0.1",
      port: 0,
      slotMemoryBytes: overrides.slotMemoryBytes ?? 1024 ** 3,
      engines: fsEngineSource(artifacts.path),
      logger,
      onLoadFailed: markDeploymentFailed(prisma, logger),
    });
    workers.push(worker);
    return worker;
  };

  const gateway = buildGateway(
    { DATABASE_URL: db.url, REDIS_URL, LOG_LEVEL: "silent", REDIS_KEY_PREFIX: keyPrefix },
    {
      logger,
      serving: { coldStartTimeoutMs: options.coldStartTimeoutMs ?? 20_000, replicaTtlMs: 1_500 },
      storage: createFsStorage(artifacts.path),
      predictions: {
        webhookSigningKey: WEBHOOK_SIGNING_KEY,
        retentionMs: 3_600_000,
        webhookTimeoutMs: 5_000,
        // Tests' webhook receivers listen on loopback: the SSRF guard would refuse them.
        webhookAllowPrivate: options.webhookAllowPrivate ?? true,
      },
    },
  );
  const gatewayUrl = await gateway.listen({ host: "127.0.0.1", port: 0 });

  return {
    db,
    prisma,
    redis,
    keyPrefix,
    artifactDir: artifacts.path,
    processEnv: { DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: keyPrefix, ARTIFACT_DIR: artifacts.path },
    gatewayUrl,
    gateway,
    workers,
    orgA,
    orgB,
    deploymentId,
    addOrg,
    addDeployment,
    startWorker,
    async close() {
      await gateway.close();
      await Promise.all(workers.map((w) => w.stop()));
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await prisma.$disconnect();
      await db.drop();
      artifacts.remove();
    },
  };
}
