import { createLogger } from "@kiln/logger";
import { AGGREGATOR_GROUP, recordUsage, type UsageEvent, usageStreamKey } from "@kiln/metering";
import { useUsageFixture } from "@kiln/metering/testing";
import { describe, expect, it } from "vitest";
import { startUsageAggregation } from "./usage-aggregation.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const fx = useUsageFixture();
const event = (over: Partial<UsageEvent> = {}) => fx.event({ computeMs: 2, batchShare: 1, ...over });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("usage aggregation thread", () => {
  it("folds events into rollups off the main thread, acknowledges them, and stops cleanly", async () => {
    const prefix = fx.freshPrefix();
    const logger = createLogger({ service: "test", level: "silent" });
    for (let i = 0; i < 5; i++) await recordUsage(fx.redis, prefix, event());
    const aggregation = await startUsageAggregation(
      { redisUrl: REDIS_URL, databaseUrl: fx.databaseUrl, keyPrefix: prefix, consumer: "thread-test", settleMs: 50 },
      logger,
    );
    try {
      await until("the first five events", async () => (await fx.rollup())?.requests === 5n);
      // Events that arrive while it runs are folded too, each once.
      for (let i = 0; i < 3; i++) await recordUsage(fx.redis, prefix, event({ status: "error" }));
      await until("three more", async () => (await fx.rollup())?.requests === 8n);
    } finally {
      await aggregation.stop();
    }
    expect(await fx.rollup()).toMatchObject({ requests: 8n, errors: 3n, gpuMilliseconds: 16n, bytesIn: 800n });
    expect(await fx.redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP)).toEqual([0, null, null, null]);
    // Stopped: a later event stays in the stream for the next aggregator.
    await recordUsage(fx.redis, prefix, event());
    await new Promise((r) => setTimeout(r, 300));
    expect((await fx.rollup())?.requests).toBe(8n);
    await fx.redis.del(usageStreamKey(prefix));
  });
});
