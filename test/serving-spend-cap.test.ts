// Spend caps at the gateway: once the projected invoice would pass an organization's cap, requests
// are refused with 402, and a burst that reaches the cap is served only up to it.
import { refreshSpendLimits, setSpendCap } from "@kiln/billing";
import { UsageAggregator } from "@kiln/metering";
import { planFor } from "@kiln/plans";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Org, type ServingStack, startServingStack } from "./serving-fixture.ts";

let stack: ServingStack;
let pro: Org;
let deploymentId: string;

beforeAll(async () => {
  stack = await startServingStack();
  await stack.startWorker();
  pro = await stack.addOrg("pro");
  deploymentId = await stack.addDeployment(pro.id, "dense");
});
afterAll(async () => {
  await stack?.close();
});

const infer = (key: string) =>
  fetch(`${stack.gatewayUrl}/v2/models/dense/infer`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "x", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] }),
  });

describe("spend cap at the gateway", () => {
  it("serves a burst up to the cap, answers 402 past it, and meters only what it served", async () => {
    const deps = { prisma: stack.prisma, redis: stack.redis, redisKeyPrefix: stack.keyPrefix };
    const included = planFor("pro").included.requests;
    // Cap: the flat $49.00 plus 10 cents of request overage (500 µ$ each, rounded half up per line),
    // which admits requests up to included + 209. The period's count stands at included + 206.
    await setSpendCap(deps, pro.id, 4910);
    const { period } = await refreshSpendLimits(deps, pro.id);
    await stack.redis.hset(
      `${stack.keyPrefix}billing:usage:${pro.id}:${period.start.getTime()}`,
      "requests",
      String(included + 206),
    );

    const statuses = (await Promise.all(Array.from({ length: 10 }, () => infer(pro.key)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 402)).toHaveLength(7);

    const refused = await infer(pro.key);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: string }).error).toMatch(/spend cap of \$49\.10/);
    const notice = await stack.prisma.billingNotice.findFirst({ where: { orgId: pro.id, kind: "spend_cap_100" } });
    expect(notice?.message).toMatch(/402/);

    const aggregator = new UsageAggregator({
      redis: stack.redis,
      prisma: stack.prisma,
      keyPrefix: stack.keyPrefix,
      consumer: "spend-cap-test",
    });
    await aggregator.runOnce();
    const rows = await stack.prisma.usageRollup.findMany({ where: { orgId: pro.id, deploymentId } });
    expect(rows.reduce((n, r) => n + r.requests, 0n)).toBe(3n);
  });
});
