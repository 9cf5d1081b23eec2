// End to end: a real gateway and worker serving a CPU engine, called over plain HTTP.
import { revokeApiKey } from "@kiln/api-keys";
import { decodeInferResponse, encodeInferRequest, ReplicaRegistry } from "@kiln/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { denseReference } from "../packages/engine/src/testing/models.ts";
import { type ServingStack, startServingStack } from "./serving-fixture.ts";
import { waitUntil } from "./support.ts";

let stack: ServingStack;
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
});
afterAll(async () => {
  await stack?.close();
});

const X = Float32Array.from([1, 2, 3, 4, -1, 0.5, 2, -3]);

async function inferJson(key: string, body: unknown, model = "dense") {
  const res = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
    method: "POST",
    headers: { ...auth(key), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

describe("KServe v2 over the gateway", () => {
  it("answers server metadata without a key", async () => {
    const res = await fetch(`${stack.gatewayUrl}/v2`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      name: "kiln",
      extensions: expect.arrayContaining(["binary_tensor_data"]),
    });
  });

  it("infers with JSON tensors, cold-starting a replica of a scaled-to-zero deployment", async () => {
    const { res, body } = await inferJson(stack.orgA.key, {
      id: "req-1",
      inputs: [{ name: "x", shape: [2, 4], datatype: "FP32", data: Array.from(X) }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(body).toMatchObject({ model_name: "dense", model_version: "1", id: "req-1" });
    const [y] = body.outputs as { name: string; datatype: string; shape: number[]; data: number[] }[];
    expect(y).toMatchObject({ name: "y", datatype: "FP32", shape: [2, 3] });
    const expected = Array.from(denseReference(X, 2));
    for (const [i, v] of (y?.data ?? []).entries()) expect(v).toBeCloseTo(expected[i] as number, 5);
  });

  it("infers with the binary tensor extension both ways", async () => {
    const encoded = encodeInferRequest({
      inputs: [{ name: "x", dtype: "float32", shape: [2, 4], data: X }],
      binaryOutputs: true,
    });
    const res = await fetch(`${stack.gatewayUrl}/v2/models/dense/versions/1/infer`, {
      method: "POST",
      headers: {
        ...auth(stack.orgA.key),
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(encoded.headerLength),
      },
      body: encoded.body,
    });
    expect(res.status).toBe(200);
    const headerLength = Number(res.headers.get("inference-header-content-length"));
    expect(headerLength).toBeGreaterThan(0);
    const decoded = decodeInferResponse(Buffer.from(await res.arrayBuffer()), headerLength);
    expect(decoded.outputs[0]?.shape).toEqual([2, 3]);
    const expected = denseReference(X, 2);
    for (const [i, v] of Array.from(decoded.outputs[0]?.data as Float32Array).entries()) {
      expect(v).toBeCloseTo(expected[i] as number, 5);
    }
  });

  it("mixes: JSON request, one output asked as binary", async () => {
    const res = await fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, {
      method: "POST",
      headers: { ...auth(stack.orgA.key), "content-type": "application/json" },
      body: JSON.stringify({
        inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 1, 1, 1] }],
        outputs: [{ name: "y", parameters: { binary_data: true } }],
      }),
    });
    expect(res.status).toBe(200);
    const headerLength = Number(res.headers.get("inference-header-content-length"));
    const header = JSON.parse(
      Buffer.from(await res.arrayBuffer())
        .subarray(0, headerLength)
        .toString(),
    );
    expect(header.outputs[0].parameters).toEqual({ binary_data_size: 12 });
  });

  it("serves model metadata and readiness within the key's organization", async () => {
    const meta = await fetch(`${stack.gatewayUrl}/v2/models/dense`, { headers: auth(stack.orgA.key) });
    expect(await meta.json()).toEqual({
      name: "dense",
      versions: ["1"],
      platform: "kiln",
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 3] }],
    });
    const ready = await fetch(`${stack.gatewayUrl}/v2/models/dense/versions/1/ready`, {
      headers: auth(stack.orgA.key),
    });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, replicas: 1 });
    expect(
      (await fetch(`${stack.gatewayUrl}/v2/models/dense/versions/2`, { headers: auth(stack.orgA.key) })).status,
    ).toBe(404);
  });

  it("answers 400 naming the tensor and the problem", async () => {
    const cases: [unknown, string][] = [
      [
        { inputs: [{ name: "x", shape: [1, 5], datatype: "FP32", data: [1, 2, 3, 4, 5] }] },
        "input 'x': dim 1 is 5 but the model expects 4 (shape [batch,4])",
      ],
      [
        { inputs: [{ name: "x", shape: [1, 4], datatype: "INT32", data: [1, 2, 3, 4] }] },
        "input 'x': datatype INT32 does not match the model's FP32",
      ],
      [
        { inputs: [{ name: "x", shape: [65, 4], datatype: "FP32", data: new Array(260).fill(0) }] },
        "input 'x': dim 0 is 65, outside the engine's profile range 1..64",
      ],
      [
        { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3] }] },
        "input 'x': shape [1,4] needs 4 elements but data has 3",
      ],
      [
        { inputs: [{ name: "z", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] },
        "input 'z' is not an input of this model (inputs: x)",
      ],
    ];
    for (const [request, message] of cases) {
      const { res, body } = await inferJson(stack.orgA.key, request);
      expect(res.status).toBe(400);
      expect(body).toEqual({ error: message });
    }
  });

  it("answers 404 for another organization's model and for unknown ones", async () => {
    const request = { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] };
    const foreign = await inferJson(stack.orgB.key, request);
    expect(foreign.res.status).toBe(404);
    expect(foreign.body).toEqual({ error: "model 'dense' not found" });
    expect((await fetch(`${stack.gatewayUrl}/v2/models/dense`, { headers: auth(stack.orgB.key) })).status).toBe(404);
    expect((await inferJson(stack.orgA.key, request, "nope")).res.status).toBe(404);
  });

  it("answers 401 without a key, with a bad key and with a revoked key", async () => {
    const request = { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] };
    const none = await fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, {
      method: "POST",
      body: JSON.stringify(request),
    });
    expect(none.status).toBe(401);
    expect((await inferJson("kiln_live_notarealkeyatallnotarealkeyatal", request)).res.status).toBe(401);

    const org = await stack.addOrg("enterprise");
    await stack.addDeployment(org.id, "dense");
    expect((await fetch(`${stack.gatewayUrl}/v2/models/dense`, { headers: auth(org.key) })).status).toBe(200);
    await revokeApiKey(
      { prisma: stack.prisma, redis: stack.redis, redisKeyPrefix: stack.keyPrefix },
      { orgId: org.id, keyId: org.keyId },
    );
    // Revocation reaches the gateway's key cache by pub/sub; allow the message a moment to arrive.
    let status = 0;
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = (await fetch(`${stack.gatewayUrl}/v2/models/dense`, { headers: auth(org.key) })).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    const revoked = await fetch(`${stack.gatewayUrl}/v2/models/dense`, { headers: auth(org.key) });
    expect(await revoked.json()).toEqual({ error: "API key has been revoked" });
  });

  it("unloads a replica after its idle window, whatever health checks say, and cold-starts it again", async () => {
    const deploymentId = await stack.addDeployment(stack.orgA.id, "idle", { idleWindowSeconds: 1 });
    const request = { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] };
    expect((await inferJson(stack.orgA.key, request, "idle")).res.status).toBe(200);
    const registry = new ReplicaRegistry(stack.redis, stack.keyPrefix, 1_500);
    expect(await registry.list(deploymentId)).toHaveLength(1);
    // Readiness probes keep coming while it idles: they are not traffic and keep nothing loaded.
    await waitUntil(
      "the idle replica unloaded",
      async () => {
        await fetch(`${stack.gatewayUrl}/v2/models/idle/ready`, { headers: auth(stack.orgA.key) });
        return (await registry.list(deploymentId)).length === 0;
      },
      30_000,
    );
    const again = await inferJson(stack.orgA.key, request, "idle");
    expect(again.res.status).toBe(200);
    expect(await registry.list(deploymentId)).toHaveLength(1);
  });

  it("scales up to max replicas while requests queue, on another worker's slot", async () => {
    const deploymentId = await stack.addDeployment(stack.orgA.id, "scaled", {
      maxReplicas: 2,
      maxBatchSize: 1,
      maxQueueDelayMs: 0,
    });
    await stack.startWorker();
    const registry = new ReplicaRegistry(stack.redis, stack.keyPrefix, 1_500);
    const request = { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] };
    // One replica first (a cold start, not a scale-up): a burst against a cold deployment may load both
    // replicas as cold starts, and this test is about growing from a ready replica under queueing.
    expect((await inferJson(stack.orgA.key, request, "scaled")).res.status).toBe(200);
    await waitUntil(
      "a second replica",
      async () => {
        // Bursts of concurrent requests keep more than a batch in flight on the first replica.
        const statuses = await Promise.all(
          Array.from({ length: 32 }, async () => (await inferJson(stack.orgA.key, request, "scaled")).res.status),
        );
        expect(statuses.every((s) => s === 200)).toBe(true);
        return (await registry.list(deploymentId)).filter((r) => r.status === "ready").length === 2;
      },
      60_000,
    );
    const replicas = await registry.list(deploymentId);
    // One replica per worker: the job for the second went to the slot that did not host the first.
    expect(new Set(replicas.map((r) => r.workerId)).size).toBe(2);
    const text = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
    expect(text).toMatch(new RegExp(`kiln_scale_up_requests_total\\{deployment="${deploymentId}"\\} [1-9]`));
  });

  it("marks a deployment whose engine cannot load as failed and stops holding its requests", async () => {
    const deploymentId = await stack.addDeployment(stack.orgA.id, "broken");
    const build = await stack.prisma.deployment.findUniqueOrThrow({
      where: { id: deploymentId },
      select: { buildId: true },
    });
    await stack.prisma.build.update({
      where: { id: build.buildId },
      data: { engineStorageKey: "engines/missing.kiln" },
    });
    const request = { inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] };
    const { res, body } = await inferJson(stack.orgA.key, request, "broken");
    expect(res.status).toBe(503);
    expect(body).toEqual({ error: "model 'broken' is failed and cannot serve" });
    expect((await stack.prisma.deployment.findUniqueOrThrow({ where: { id: deploymentId } })).status).toBe("failed");
  });

  it("answers CORS preflights so browsers can call it with a key", async () => {
    const res = await fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("exposes Prometheus metrics with batch sizes and cold starts", async () => {
    const text = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
    expect(text).toMatch(
      new RegExp(`kiln_inference_request_success_total\\{deployment="${stack.deploymentId}"\\} \\d+`),
    );
    expect(text).toContain(`kiln_inference_batch_size_bucket{le="1",deployment="${stack.deploymentId}"}`);
    expect(text).toContain(`kiln_cold_starts_total{deployment="${stack.deploymentId}",outcome="ready"} 1`);
    expect(text).toMatch(/kiln_cold_start_duration_seconds_count\{deployment="[^"]+"\} \d+/);
    expect(text).toContain(`kiln_ready_replicas{deployment="${stack.deploymentId}"} 1`);
  });
});
