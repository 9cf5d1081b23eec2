// Serving leftovers end to end: deployments with minReplicas > 0 keep that many replicas loaded
// without any traffic (asked for when the policy is set, restored when their worker goes away), and
// the SSRF guard refuses async-prediction webhooks aimed at private, loopback or link-local
// addresses unless KILN_WEBHOOK_ALLOW_PRIVATE is set (the fixture's gateway sets it).
import { buildGateway } from "@kiln/gateway";
import { ReplicaRegistry, resumeDeployment, updateDeploymentPolicy } from "@kiln/serving";
import { createFsStorage } from "@kiln/storage";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logger, REDIS_URL, type ServingStack, startServingStack, WEBHOOK_SIGNING_KEY } from "./serving-fixture.ts";
import { waitUntil } from "./support.ts";

let stack: ServingStack;
let registry: ReplicaRegistry;

beforeAll(async () => {
  stack = await startServingStack();
  registry = new ReplicaRegistry(stack.redis, stack.keyPrefix, 0);
});
afterAll(async () => {
  await stack?.close();
});

const readyReplicas = async (deploymentId: string) =>
  (await registry.list(deploymentId)).filter((r) => r.status === "ready");

describe("minReplicas warm-up", () => {
  it("loads the minimum when the policy is set, keeps it while idle, and restores it after the worker goes", async () => {
    const first = await stack.startWorker({ heartbeatMs: 300 });
    const deps = { prisma: stack.prisma, redis: stack.redis, redisKeyPrefix: stack.keyPrefix };
    const id = await stack.addDeployment(stack.orgA.id, "warm", { idleWindowSeconds: 1 });
    expect(await readyReplicas(id)).toHaveLength(0);

    // No request is ever sent to "warm": the replica comes from the policy alone.
    await updateDeploymentPolicy(deps, stack.orgA.id, id, { minReplicas: 1 });
    await waitUntil("a warm replica", async () => (await readyReplicas(id)).length === 1, 60_000);
    const [warm] = await readyReplicas(id);
    expect(first.host.replicas.has(warm?.replicaId ?? "")).toBe(true);

    // Idle far past its 1 s window, the minimum stays loaded.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await readyReplicas(id)).map((r) => r.replicaId)).toEqual([warm?.replicaId]);

    // Its worker goes away; a new worker gets the replica back without any request.
    await first.stop();
    stack.workers.splice(stack.workers.indexOf(first), 1);
    expect(await readyReplicas(id)).toHaveLength(0);
    const second = await stack.startWorker({ heartbeatMs: 300 });
    await waitUntil("the warm replica restored", async () => (await readyReplicas(id)).length === 1, 60_000);
    const [restored] = await readyReplicas(id);
    expect(restored?.replicaId).not.toBe(warm?.replicaId);
    expect(second.host.replicas.has(restored?.replicaId ?? "")).toBe(true);

    // Back to scale-to-zero: the idle sweep unloads it.
    await updateDeploymentPolicy(deps, stack.orgA.id, id, { minReplicas: 0 });
    await waitUntil("the replica unloaded when idle", async () => (await readyReplicas(id)).length === 0, 30_000);

    // A drained deployment is not kept warm; resuming it brings its minimum back.
    await updateDeploymentPolicy(deps, stack.orgA.id, id, { minReplicas: 1 });
    await waitUntil("warm again", async () => (await readyReplicas(id)).length === 1, 60_000);
    await stack.prisma.deployment.update({ where: { id }, data: { status: "draining" } });
    await stack.redis.set(`${stack.keyPrefix}deployment-draining:${id}`, "1");
    await waitUntil("drained", async () => (await readyReplicas(id)).length === 0, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await readyReplicas(id)).toHaveLength(0);
    await resumeDeployment(deps, stack.orgA.id, id);
    await waitUntil("warm after resume", async () => (await readyReplicas(id)).length === 1, 60_000);
  });
});

describe("webhook SSRF guard", () => {
  let guarded: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    // A gateway with the production default: KILN_WEBHOOK_ALLOW_PRIVATE unset.
    guarded = buildGateway(
      { DATABASE_URL: stack.db.url, REDIS_URL, LOG_LEVEL: "silent", REDIS_KEY_PREFIX: stack.keyPrefix },
      {
        logger,
        serving: { coldStartTimeoutMs: 20_000, replicaTtlMs: 1_500, minReplicaCheckMs: 0 },
        storage: createFsStorage(stack.artifactDir),
        predictions: { webhookSigningKey: WEBHOOK_SIGNING_KEY, retentionMs: 3_600_000, webhookTimeoutMs: 5_000 },
        runPredictionWorkers: false,
      },
    );
    url = await guarded.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await guarded?.close();
  });

  const create = (gatewayUrl: string, webhook: string) =>
    fetch(`${gatewayUrl}/v1/predictions`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "dense",
        webhook,
        inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }],
      }),
    });

  it("refuses private, loopback and link-local webhook targets with 400", async () => {
    for (const target of [
      "http://127.0.0.1:9/hook",
      "http://localhost:9/hook",
      "http://10.1.2.3/hook",
      "http://192.168.0.10/hook",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]:9/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "ftp://example.com/hook",
    ]) {
      const res = await create(url, target);
      expect(res.status, target).toBe(400);
      expect(((await res.json()) as { error: string }).error, target).toMatch(/webhook/);
    }
    // Nothing was accepted.
    expect(await stack.prisma.prediction.count({ where: { webhookUrl: { contains: "hook" } } })).toBe(0);
  });

  it("accepts a loopback webhook where KILN_WEBHOOK_ALLOW_PRIVATE is set (the fixture's gateway)", async () => {
    const res = await create(stack.gatewayUrl, "http://127.0.0.1:9/allowed-hook");
    expect([201, 202]).toContain(res.status);
  });
});
