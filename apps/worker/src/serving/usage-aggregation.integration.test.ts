import { randomBytes, randomUUID } from "node:crypto";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedDeployment, type TestDatabase } from "@kiln/db/testing";
import { createLogger } from "@kiln/logger";
import { AGGREGATOR_GROUP, recordUsage, type UsageEvent, usageStreamKey } from "@kiln/metering";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUsageAggregation } from "./usage-aggregation.ts";

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
  computeMs: 2,
  batchShare: 1,
  bytesIn: 100,
  bytesOut: 40,
  status: "success",
  latencyMs: 3,
  at: HOUR + 60_000,
  ...over,
});

const rollup = () =>
  prisma.usageRollup.findUnique({ where: { orgId_deploymentId_hour: { orgId, deploymentId, hour: new Date(HOUR) } } });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("usage aggregation thread", () => {
  it("folds events into rollups off the main thread, acknowledges them, and stops cleanly", async () => {
    const prefix = `test:${randomBytes(4).toString("hex")}:`;
    const logger = createLogger({ service: "test", level: "silent" });
    for (let i = 0; i < 5; i++) await recordUsage(redis, prefix, event());
    const aggregation = await startUsageAggregation(
      { redisUrl: REDIS_URL, databaseUrl: db.url, keyPrefix: prefix, consumer: "thread-test", settleMs: 50 },
      logger,
    );
    try {
      await until("the first five events", async () => (await rollup())?.requests === 5n);
      // Events that arrive while it runs are folded too, each once.
      for (let i = 0; i < 3; i++) await recordUsage(redis, prefix, event({ status: "error" }));
      await until("three more", async () => (await rollup())?.requests === 8n);
    } finally {
      await aggregation.stop();
    }
    expect(await rollup()).toMatchObject({ requests: 8n, errors: 3n, gpuMilliseconds: 16n, bytesIn: 800n });
    expect(await redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP)).toEqual([0, null, null, null]);
    // Stopped: a later event stays in the stream for the next aggregator.
    await recordUsage(redis, prefix, event());
    await new Promise((r) => setTimeout(r, 300));
    expect((await rollup())?.requests).toBe(8n);
    await redis.del(usageStreamKey(prefix));
  });
});
