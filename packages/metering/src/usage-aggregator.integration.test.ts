import { createPrismaClient } from "@kiln/db";
import { describe, expect, it } from "vitest";
import { latencyPercentile } from "./percentiles.ts";
import { USAGE_TEST_HOUR, useUsageFixture } from "./testing.ts";
import { AGGREGATOR_GROUP, UsageAggregator } from "./usage-aggregator.ts";
import { recordUsage, recordUsageBatch, usageStreamKey } from "./usage-event.ts";

const fx = useUsageFixture();
const HOUR = USAGE_TEST_HOUR;

describe("usage aggregation", () => {
  it("rolls events up per organization, deployment and UTC hour", async () => {
    const prefix = fx.freshPrefix();
    await fx.prisma.usageRollup.deleteMany();
    for (const e of [
      fx.event(),
      fx.event({ status: "error", latencyMs: 700 }),
      fx.event({ at: HOUR + 3_600_000 + 5 }),
    ]) {
      await recordUsage(fx.redis, prefix, e);
    }
    const aggregator = new UsageAggregator({ redis: fx.redis, prisma: fx.prisma, keyPrefix: prefix, consumer: "a" });
    expect(await aggregator.runOnce()).toBe(3);
    const row = await fx.rollup();
    expect(row).toMatchObject({ requests: 2n, errors: 1n, gpuMilliseconds: 5n, bytesIn: 200n, bytesOut: 80n });
    expect(latencyPercentile(row?.latencyBuckets ?? [], 0.5)).toBe(5);
    expect(latencyPercentile(row?.latencyBuckets ?? [], 0.99)).toBe(1_000);
    expect((await fx.rollup(HOUR + 3_600_000))?.requests).toBe(1n);
    expect(await fx.redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP)).toEqual([0, null, null, null]);
  });

  it("prunes receipts past their retention and keeps recent ones", async () => {
    const aggregator = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: fx.freshPrefix(),
      consumer: "p",
    });
    await fx.prisma.usageEventReceipt.createMany({
      data: [
        { id: "old-receipt", processedAt: new Date(Date.now() - 8 * 24 * 3_600_000) },
        { id: "new-receipt", processedAt: new Date() },
      ],
    });
    expect(await aggregator.pruneReceipts()).toBeGreaterThanOrEqual(1);
    const left = await fx.prisma.usageEventReceipt.findMany({ where: { id: { in: ["old-receipt", "new-receipt"] } } });
    expect(left.map((r) => r.id)).toEqual(["new-receipt"]);
  });

  it("counts once when it crashes after the commit and before the acknowledgement", async () => {
    const prefix = fx.freshPrefix();
    await fx.prisma.usageRollup.deleteMany();
    const events = [fx.event(), fx.event(), fx.event()];
    for (const e of events) await recordUsage(fx.redis, prefix, e);
    const crashing = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: prefix,
      consumer: "doomed",
      afterCommit: () => {
        throw new Error("crash between commit and XACK");
      },
    });
    await expect(crashing.runOnce()).rejects.toThrow("crash between commit and XACK");
    expect((await fx.rollup())?.requests).toBe(3n);
    // The entries are still pending for the dead consumer; a survivor claims and re-reads them.
    const survivor = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: prefix,
      consumer: "survivor",
      claimIdleMs: 0,
    });
    expect(await survivor.runOnce()).toBe(0);
    expect((await fx.rollup())?.requests).toBe(3n);
    expect((await fx.redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP))[0]).toBe(0);
  });

  it("loses nothing when the transaction fails before the commit", async () => {
    const prefix = fx.freshPrefix();
    await fx.prisma.usageRollup.deleteMany();
    // A database that cannot be reached fails the transaction before it commits.
    const broken = createPrismaClient(fx.databaseUrl.replace(/\/[^/]+$/, "/kiln_missing_db"));
    for (const e of [fx.event(), fx.event()]) await recordUsage(fx.redis, prefix, e);
    const failing = new UsageAggregator({ redis: fx.redis, prisma: broken, keyPrefix: prefix, consumer: "broken" });
    await expect(failing.runOnce()).rejects.toThrow();
    await broken.$disconnect();
    expect(await fx.rollup()).toBeNull();
    const survivor = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: prefix,
      consumer: "ok",
      claimIdleMs: 0,
    });
    expect(await survivor.runOnce()).toBe(2);
    expect((await fx.rollup())?.requests).toBe(2n);
  });

  it("counts every event of a batched entry once, beside single-event entries, across a crash before the ack", async () => {
    const prefix = fx.freshPrefix();
    await fx.prisma.usageRollup.deleteMany();
    const batch = [fx.event(), fx.event({ status: "error" }), fx.event({ at: HOUR + 3_600_000 + 5 })];
    await recordUsageBatch(fx.redis, prefix, batch, "bat_resent");
    await recordUsage(fx.redis, prefix, fx.event());
    await recordUsageBatch(fx.redis, prefix, [fx.event(), fx.event()]);
    const crashing = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: prefix,
      consumer: "doomed-batch",
      afterCommit: () => {
        throw new Error("crash between commit and XACK");
      },
    });
    await expect(crashing.runOnce()).rejects.toThrow("crash between commit and XACK");
    const survivor = new UsageAggregator({
      redis: fx.redis,
      prisma: fx.prisma,
      keyPrefix: prefix,
      consumer: "survivor-batch",
      claimIdleMs: 0,
    });
    expect(await survivor.runOnce()).toBe(0);
    expect(await fx.rollup()).toMatchObject({ requests: 5n, errors: 1n });
    expect((await fx.rollup(HOUR + 3_600_000))?.requests).toBe(1n);
    expect((await fx.redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP))[0]).toBe(0);
    // A batch sent again (a retried write) adds nothing: its receipt exists.
    await recordUsageBatch(fx.redis, prefix, batch, "bat_resent");
    expect(await survivor.runOnce()).toBe(0);
    expect((await fx.rollup())?.requests).toBe(5n);
  });
});
