// Plan enforcement at the gateway: rate and monthly quotas (429 + Retry-After), lapsed payment
// (402), request size (413); refused requests are never metered.
import { quotaKeys, UsageAggregator } from "@kiln/metering";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Org, type ServingStack, startServingStack } from "./serving-fixture.ts";

let stack: ServingStack;
let free: Org;
let freeDeploymentId: string;

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
  free = await stack.addOrg("free");
  freeDeploymentId = await stack.addDeployment(free.id, "dense");
});
afterAll(async () => {
  await stack?.close();
});

const infer = (
  key: string,
  body: string | Buffer = JSON.stringify({
    inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }],
  }),
) =>
  fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body,
  });

describe("quotas at the gateway", () => {
  it("answers within the plan, then 429 with Retry-After when the bucket is empty", async () => {
    expect((await infer(free.key)).status).toBe(200);
    expect((await infer(free.key)).status).toBe(200);
    // Drain the bucket far below zero so the refusal does not depend on how fast this test runs.
    const keys = quotaKeys(stack.keyPrefix, free.id, new Date());
    const [seconds] = await stack.redis.time();
    await stack.redis.hset(keys.bucket, "tokens", -100, "at", Number(seconds) * 1000);
    const res = await infer(free.key);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(15);
    expect(await res.json()).toEqual({ error: "rate limit of 5 requests/second (burst 10) on the Free plan exceeded" });
    await stack.redis.del(keys.bucket);
  });

  it("answers 429 once the month's requests are used up", async () => {
    const keys = quotaKeys(stack.keyPrefix, free.id, new Date());
    const used = await stack.redis.get(keys.monthRequests);
    expect(Number(used)).toBe(2);
    await stack.redis.set(keys.monthRequests, 10_000);
    const res = await infer(free.key);
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual({ error: "monthly quota of 10000 requests on the Free plan is used up" });
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    await stack.redis.set(keys.monthRequests, 2);
  });

  it("answers 413 past the plan's request size", async () => {
    const big = JSON.stringify({
      inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }],
      pad: "x".repeat(1024 * 1024),
    });
    const res = await infer(free.key, big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/exceeds the Free plan's 1048576/);
  });

  it("answers 402 when a paid subscription has lapsed", async () => {
    const lapsed = await stack.addOrg("pro");
    await stack.prisma.subscription.update({ where: { orgId: lapsed.id }, data: { status: "unpaid" } });
    await stack.addDeployment(lapsed.id, "dense");
    const res = await infer(lapsed.key);
    expect(res.status).toBe(402);
    expect(await res.json()).toEqual({ error: "subscription is unpaid: update the payment method to resume serving" });
  });

  it("meters the answered requests and none of the refused ones, once", async () => {
    const aggregator = new UsageAggregator({
      redis: stack.redis,
      prisma: stack.prisma,
      keyPrefix: stack.keyPrefix,
      consumer: "test",
    });
    await aggregator.runOnce();
    await aggregator.runOnce();
    const rows = await stack.prisma.usageRollup.findMany({ where: { orgId: free.id, deploymentId: freeDeploymentId } });
    expect(rows.reduce((n, r) => n + r.requests, 0n)).toBe(2n);
    expect(rows.reduce((n, r) => n + r.errors, 0n)).toBe(0n);
  });
});
