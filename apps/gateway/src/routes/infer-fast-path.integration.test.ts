// The inference fast path answers exactly as Fastify's route does: the same requests sent over real
// HTTP to two gateways of one serving stack, one with the fast path and one without, get the same
// status, headers and body (success JSON and binary, 400, 401, 404, 413, 429).
import { quotaKeys } from "@kiln/metering";
import { encodeInferRequest } from "@kiln/serving";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logger, type Org, REDIS_URL, type ServingStack, startServingStack } from "../../../../test/serving-fixture.ts";
import { buildGateway } from "../build-gateway.ts";

let stack: ServingStack;
let fastifyOnly: FastifyInstance;
let fastifyUrl: string;
let free: Org;

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
  free = await stack.addOrg("free");
  await stack.addDeployment(free.id, "dense");
  fastifyOnly = buildGateway(
    { DATABASE_URL: stack.db.url, REDIS_URL, LOG_LEVEL: "silent", REDIS_KEY_PREFIX: stack.keyPrefix },
    { logger, runPredictionWorkers: false, inferFastPath: false },
  );
  fastifyUrl = await fastifyOnly.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await fastifyOnly?.close();
  await stack?.close();
});

// Differ between any two answers, whoever sends them.
const PER_ANSWER = new Set(["date", "x-request-id"]);

async function answerOf(base: string, path: string, init: RequestInit) {
  const res = await fetch(`${base}${path}`, { method: "POST", ...init });
  const headers = Object.fromEntries([...res.headers].filter(([name]) => !PER_ANSWER.has(name)));
  return {
    status: res.status,
    headers,
    requestId: res.headers.get("x-request-id"),
    body: Buffer.from(await res.arrayBuffer()).toString("latin1"),
  };
}

/** Sends one request to both gateways and expects the same answer; returns it. */
async function same(path: string, init: RequestInit) {
  const fast = await answerOf(stack.gatewayUrl, path, init);
  const slow = await answerOf(fastifyUrl, path, init);
  expect(fast).toEqual({ ...slow, requestId: fast.requestId });
  expect(typeof fast.requestId).toBe(typeof slow.requestId);
  return fast;
}

const json = (key: string, body: unknown) => ({
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: JSON.stringify(body),
});
const X = { name: "x", shape: [2, 4], datatype: "FP32", data: [1, 2, 3, 4, -1, 0.5, 2, -3] };

describe("inference fast path", () => {
  it("answers JSON and binary inference as Fastify does", async () => {
    const ok = await same("/v2/models/dense/infer", json(stack.orgA.key, { id: "r1", inputs: [X] }));
    expect(ok.status).toBe(200);
    expect(ok.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(ok.headers["access-control-allow-origin"]).toBe("*");

    const encoded = encodeInferRequest({
      inputs: [{ name: "x", dtype: "float32", shape: [2, 4], data: Float32Array.from(X.data) }],
      binaryOutputs: true,
    });
    const binary = await same("/v2/models/dense/versions/1/infer", {
      headers: {
        authorization: `Bearer ${stack.orgA.key}`,
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(encoded.headerLength),
      },
      body: encoded.body,
    });
    expect(binary.status).toBe(200);
    expect(binary.headers["inference-header-content-length"]).toMatch(/^\d+$/);
  });

  it("answers 400, 401 and 404 as Fastify does", async () => {
    const bad = await same("/v2/models/dense/infer", json(stack.orgA.key, { inputs: [{ ...X, shape: [1, 8] }] }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: "input 'x': dim 1 is 8 but the model expects 4 (shape [batch,4])" });
    const badLength = await same("/v2/models/dense/infer", {
      ...json(stack.orgA.key, { inputs: [X] }),
      headers: { authorization: `Bearer ${stack.orgA.key}`, "inference-header-content-length": "x" },
    });
    expect(badLength.status).toBe(400);

    expect((await same("/v2/models/dense/infer", { body: JSON.stringify({ inputs: [X] }) })).status).toBe(401);
    expect((await same("/v2/models/dense/infer", json("kiln_live_notarealkeyatallnotarealkeyatal", {}))).status).toBe(
      401,
    );

    const foreign = await same("/v2/models/dense/infer", json(stack.orgB.key, { inputs: [X] }));
    expect(foreign.status).toBe(404);
    expect((await same("/v2/models/dense/versions/7/infer", json(stack.orgA.key, { inputs: [X] }))).status).toBe(404);
  });

  it("answers 413 past the plan's request size and 429 with Retry-After as Fastify does", async () => {
    const big = {
      ...json(free.key, { inputs: [X] }),
      body: JSON.stringify({ inputs: [X], pad: "x".repeat(1_100_000) }),
    };
    const tooLarge = await same("/v2/models/dense/infer", big);
    expect(tooLarge.status).toBe(413);

    const keys = quotaKeys(stack.keyPrefix, free.id, new Date());
    const [seconds] = await stack.redis.time();
    await stack.redis.hset(keys.bucket, "tokens", -100, "at", Number(seconds) * 1000);
    const limited = await same("/v2/models/dense/infer", json(free.key, { inputs: [X] }));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    await stack.redis.del(keys.bucket);
  });
});
