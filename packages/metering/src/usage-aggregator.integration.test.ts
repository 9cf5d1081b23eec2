import { randomBytes, randomUUID } from "node:crypto";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedDeployment, type TestDatabase } from "@kiln/db/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latencyPercentile } from "./percentiles.ts";
import { AGGREGATOR_GROUP, UsageAggregator } from "./usage-aggregator.ts";
import { recordUsage, type UsageEvent, usageStreamKey } from "./usage-event.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let db: TestDatabase;
let prisma: PrismaClient;
let redis: Redis;
let orgId: string;
let deploymentId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createPrismaClient(db.url);
  redis = new Redis(REDIS_URL);
  ({ orgId, deploymentId } = await seedDeployment(prisma));
});
afterAll(async () => {
  redis?.disconnect();
  await prisma?.$disconnect();
  await db?.drop();
});

const HOUR = Date.UTC(2026, 10, 22, 7);
const event = (over: Partial<UsageEvent> = {}): UsageEvent => ({
  eventId: randomUUID(),
  orgId,
  deploymentId,
  computeMs: 2.5,
  batchShare: 0.5,
  bytesIn: 100,
  bytesOut: 40,
  status: "success",
  latencyMs: 3,
  at: HOUR + 60_000,
  ...over,
});

function freshPrefix() {
  return `test:${randomBytes(4).toString("hex")}:`;
}

async function rollup(hour = HOUR) {
  return prisma.usageRollup.findUnique({
    where: { orgId_deploymentId_hour: { orgId, deploymentId, hour: new Date(hour) } },
  });
}

describe("usage aggregation", () => {
  it("rolls events up per organization, deployment and UTC hour", async () => {
    const prefix = freshPrefix();
    await prisma.usageRollup.deleteMany();
    for (const e of [event(), event({ status: "error", latencyMs: 700 }), event({ at: HOUR + 3_600_000 + 5 })]) {
      await recordUsage(redis, prefix, e);
    }
    const aggregator = new UsageAggregator({ redis, prisma, keyPrefix: prefix, consumer: "a" });
    expect(await aggregator.runOnce()).toBe(3);
    const row = await rollup();
    expect(row).toMatchObject({ requests: 2n, errors: 1n, gpuMilliseconds: 5n, bytesIn: 200n, bytesOut: 80n });
    expect(latencyPercentile(row?.latencyBuckets ?? [], 0.5)).toBe(5);
    expect(latencyPercentile(row?.latencyBuckets ?? [], 0.99)).toBe(1_000);
    expect((await rollup(HOUR + 3_600_000))?.requests).toBe(1n);
    expect(await redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP)).toEqual([0, null, null, null]);
  });

  it("prunes receipts past their retention and keeps recent ones", async () => {
    const aggregator = new UsageAggregator({ redis, prisma, keyPrefix: freshPrefix(), consumer: "p" });
    await prisma.usageEventReceipt.createMany({
      data: [
        { id: "old-receipt", processedAt: new Date(Date.now() - 8 * 24 * 3_600_000) },
        { id: "new-receipt", processedAt: new Date() },
      ],
    });
    expect(await aggregator.pruneReceipts()).toBeGreaterThanOrEqual(1);
    const left = await prisma.usageEventReceipt.findMany({ where: { id: { in: ["old-receipt", "new-receipt"] } } });
    expect(left.map((r) => r.id)).toEqual(["new-receipt"]);
  });

  it("counts once when it crashes after the commit and before the acknowledgement", async () => {
    const prefix = freshPrefix();
    await prisma.usageRollup.deleteMany();
    const events = [event(), event(), event()];
    for (const e of events) await recordUsage(redis, prefix, e);
    const crashing = new UsageAggregator({
      redis,
      prisma,
      keyPrefix: prefix,
      consumer: "doomed",
      afterCommit: () => {
        throw new Error("crash between commit and XACK");
      },
    });
    await expect(crashing.runOnce()).rejects.toThrow("crash between commit and XACK");
    expect((await rollup())?.requests).toBe(3n);
    // The entries are still pending for the dead consumer; a survivor claims and re-reads them.
    const survivor = new UsageAggregator({ redis, prisma, keyPrefix: prefix, consumer: "survivor", claimIdleMs: 0 });
    expect(await survivor.runOnce()).toBe(0);
    expect((await rollup())?.requests).toBe(3n);
    expect((await redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP))[0]).toBe(0);
  });

  it("loses nothing when the transaction fails before the commit", async () => {
    const prefix = freshPrefix();
    await prisma.usageRollup.deleteMany();
    // A database that cannot be reached fails the transaction before it commits.
    const broken = createPrismaClient(db.url.replace(/\/[^/]+$/, "/kiln_missing_db"));
    for (const e of [event(), event()]) await recordUsage(redis, prefix, e);
    const failing = new UsageAggregator({ redis, prisma: broken, keyPrefix: prefix, consumer: "broken" });
    await expect(failing.runOnce()).rejects.toThrow();
    await broken.$disconnect();
    expect(await rollup()).toBeNull();
    const survivor = new UsageAggregator({ redis, prisma, keyPrefix: prefix, consumer: "ok", claimIdleMs: 0 });
    expect(await survivor.runOnce()).toBe(2);
    expect((await rollup())?.requests).toBe(2n);
  });
});
