// A worker process is killed (SIGKILL) while requests and async predictions are in flight:
// every synchronous request succeeds or gets a 503, every accepted prediction still succeeds,
// and the metered count equals the answered count.
import { join } from "node:path";
import { UsageAggregator } from "@kiln/metering";
import { LoadQueue, ReplicaRegistry } from "@kiln/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestReplica, type ServingStack, startServingStack } from "./serving-fixture.ts";
import { ROOT, type Started, startGroup, waitUntil } from "./support.ts";

let stack: ServingStack;
const workers: Started[] = [];

function spawnWorker(name: string): Started {
  const started = startGroup(process.execPath, ["--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...stack.processEnv,
      WORKER_ID: name,
      WORKER_HEARTBEAT_MS: "300",
      LOG_LEVEL: "warn",
      NODE_ENV: "test",
    },
  });
  workers.push(started);
  return started;
}

beforeAll(async () => {
  stack = await startServingStack({ coldStartTimeoutMs: 30_000 });
});
afterAll(async () => {
  for (const w of workers) {
    if (w.child.exitCode === null && w.child.signalCode === null && w.child.pid) process.kill(-w.child.pid, "SIGKILL");
  }
  await stack?.close();
});

describe("a worker killed under load", () => {
  it("answers every request with 200 or 503, loses no prediction, and meters exactly what it answered", async () => {
    const doomed = spawnWorker("doomed-worker");
    spawnWorker("surviving-worker");
    const deploymentId = stack.deploymentId;
    // Two replicas, one per worker (a worker hosts one replica of a deployment).
    const loads = new LoadQueue(stack.redis.duplicate({ maxRetriesPerRequest: null }), stack.keyPrefix);
    for (const ordinal of [1, 2]) await requestReplica(stack, loads, deploymentId, ordinal);
    const registry = new ReplicaRegistry(stack.redis, stack.keyPrefix, 900);
    await waitUntil("two ready replicas", async () => (await registry.list(deploymentId)).length === 2, 120_000);
    expect(new Set((await registry.list(deploymentId)).map((r) => r.workerId))).toEqual(
      new Set(["doomed-worker", "surviving-worker"]),
    );

    const auth = { authorization: `Bearer ${stack.orgA.key}`, "content-type": "application/json" };
    const body = JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] });
    const statuses: number[] = [];
    const predictionIds: string[] = [];
    let sent = 0;
    const client = async () => {
      while (sent < 300) {
        const n = sent++;
        if (n % 10 === 0) {
          const res = await fetch(`${stack.gatewayUrl}/v1/predictions`, {
            method: "POST",
            headers: auth,
            body: JSON.stringify({ model: "dense", ...JSON.parse(body) }),
          });
          expect(res.status).toBe(202);
          predictionIds.push(((await res.json()) as { id: string }).id);
        }
        const res = await fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, { method: "POST", headers: auth, body });
        statuses.push(res.status);
        await res.arrayBuffer();
        if (n === 100 && doomed.child.pid) process.kill(-doomed.child.pid, "SIGKILL");
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    await doomed.exited;

    expect(statuses.length).toBe(300);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    const answered = statuses.filter((s) => s === 200).length;
    // The surviving replica keeps serving: most requests succeed.
    expect(answered).toBeGreaterThan(250);

    // Every accepted prediction finishes.
    await waitUntil(
      "every prediction finished",
      async () =>
        (await stack.prisma.prediction.count({ where: { id: { in: predictionIds }, status: "succeeded" } })) ===
        predictionIds.length,
      60_000,
    );

    // Fold every usage event (the workers' own aggregators may have taken some already).
    const aggregator = new UsageAggregator({
      redis: stack.redis,
      prisma: stack.prisma,
      keyPrefix: stack.keyPrefix,
      consumer: "test",
      claimIdleMs: 0,
    });
    await waitUntil(
      "usage stream folded",
      async () => {
        await aggregator.runOnce();
        const pending = (await stack.redis.xpending(`${stack.keyPrefix}usage-events`, "usage-rollups")) as [number];
        const length = await stack.redis.xlen(`${stack.keyPrefix}usage-events`);
        const info = (await stack.redis.xinfo("GROUPS", `${stack.keyPrefix}usage-events`)) as unknown[][];
        const lag = Number(info[0]?.[info[0].indexOf("lag") + 1] ?? 0);
        return pending[0] === 0 && lag === 0 && length > 0;
      },
      30_000,
    );
    const rows = await stack.prisma.usageRollup.findMany({ where: { deploymentId: deploymentId } });
    const metered = rows.reduce((n, r) => n + r.requests, 0n);
    expect(metered).toBe(BigInt(answered + predictionIds.length));
    await loads.close();
  });
});
