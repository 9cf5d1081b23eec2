import { existsSync, readdirSync, readFileSync } from "node:fs";
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

/** The nice value of each thread of a process (Linux: field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceValues(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

describe("usage aggregation process", () => {
  it("folds events into rollups off the serving process, acknowledges them, and stops cleanly", async () => {
    const prefix = fx.freshPrefix();
    const logger = createLogger({ service: "test", level: "silent" });
    for (let i = 0; i < 5; i++) await recordUsage(fx.redis, prefix, event());
    const aggregation = await startUsageAggregation(
      { redisUrl: REDIS_URL, databaseUrl: fx.databaseUrl, keyPrefix: prefix, consumer: "thread-test", settleMs: 50 },
      logger,
    );
    try {
      await until("the first five events", async () => (await fx.rollup())?.requests === 5n);
      // Every thread of the aggregation process (V8's helpers included) runs at the lowest priority.
      const pid = aggregation.pid as number;
      expect(pid).toBeGreaterThan(0);
      expect(pid).not.toBe(process.pid);
      if (existsSync(`/proc/${pid}/task`)) {
        const nice = threadNiceValues(pid);
        expect(nice.length).toBeGreaterThan(1);
        expect(nice.every((n) => n === 19)).toBe(true);
      }
      // Events that arrive while it runs are folded too, each once.
      for (let i = 0; i < 3; i++) await recordUsage(fx.redis, prefix, event({ status: "error" }));
      await until("three more", async () => (await fx.rollup())?.requests === 8n);
    } finally {
      await aggregation.stop();
    }
    expect(aggregation.pid).toBeUndefined();
    expect(await fx.rollup()).toMatchObject({ requests: 8n, errors: 3n, gpuMilliseconds: 16n, bytesIn: 800n });
    expect(await fx.redis.xpending(usageStreamKey(prefix), AGGREGATOR_GROUP)).toEqual([0, null, null, null]);
    // Stopped: a later event stays in the stream for the next aggregator.
    await recordUsage(fx.redis, prefix, event());
    await new Promise((r) => setTimeout(r, 300));
    expect((await fx.rollup())?.requests).toBe(8n);
    await fx.redis.del(usageStreamKey(prefix));
  });
});

describe("usage aggregation process, stopped before it has started", () => {
  it("ends at once", async () => {
    const logger = createLogger({ service: "test", level: "silent" });
    const aggregation = await startUsageAggregation(
      {
        redisUrl: REDIS_URL,
        databaseUrl: fx.databaseUrl,
        keyPrefix: fx.freshPrefix(),
        consumer: "early-stop",
        settleMs: 50,
      },
      logger,
    );
    const started = Date.now();
    await aggregation.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(aggregation.pid).toBeUndefined();
  });
});
