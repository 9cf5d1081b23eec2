// Dynamic batching on a real CPU engine: concurrent requests share batches within the profile's
// limit, and each caller gets exactly its own rows back.
import { build, loadEngine, tensor } from "@kiln/engine";
import { describe, expect, it } from "vitest";
import { denseModel, denseProfile, denseReference } from "../../../engine/src/testing/models.ts";
import { DynamicBatcher } from "./dynamic-batcher.ts";

async function denseContext(maxBatch: number) {
  const { engine } = await build(denseModel(), { profiles: [denseProfile(1, Math.min(4, maxBatch), maxBatch)] });
  return loadEngine(engine).createContext();
}

type Batch = { size: number; requests: number; computeMs: number };

/** A batcher over the dense model (profiles up to maxBatch rows) and the batches it reports. */
async function observedBatcher(maxBatch: number, maxBatchSize: number, maxQueueDelayMs: number) {
  const batches: Batch[] = [];
  const batcher = new DynamicBatcher(
    await denseContext(maxBatch),
    { maxBatchSize, maxQueueDelayMs },
    { onBatch: (b) => batches.push(b) },
  );
  return { batcher, batches };
}

const rowsOf = (n: number, seed: number) => Float32Array.from({ length: n * 4 }, (_, i) => ((i + seed) % 7) - 3);

describe("DynamicBatcher", () => {
  it("joins concurrent requests up to the max batch and splits the outputs back", async () => {
    const { batcher, batches } = await observedBatcher(64, 8, 20);
    const sizes = [1, 2, 3, 1, 1, 2, 4, 1, 1];
    const results = await Promise.all(sizes.map((n, i) => batcher.run({ x: tensor("float32", [n, 4], rowsOf(n, i)) })));
    results.forEach((r, i) => {
      const n = sizes[i] as number;
      expect(r.outputs.y?.shape).toEqual([n, 3]);
      const expected = denseReference(rowsOf(n, i), n);
      Array.from(r.outputs.y?.data as Float32Array).forEach((v, j) => {
        expect(v).toBeCloseTo(expected[j] as number, 5);
      });
      expect(r.batchShare).toBeCloseTo(n / r.batchSize, 6);
    });
    // 16 rows with at most 8 per batch, requests kept whole: at least two batches, none over 8.
    expect(batches.every((b) => b.size <= 8)).toBe(true);
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(16);
    expect(Math.max(...batches.map((b) => b.requests))).toBeGreaterThan(1);
  });

  it("starts requests that arrive together as one batch, even with no queue delay", async () => {
    const { batcher, batches } = await observedBatcher(64, 16, 0);
    await Promise.all(Array.from({ length: 5 }, (_, i) => batcher.run({ x: tensor("float32", [1, 4], rowsOf(1, i)) })));
    expect(batches.map(({ size, requests }) => ({ size, requests }))).toEqual([{ size: 5, requests: 5 }]);
    // Alone, a request still runs at once, by itself.
    await batcher.run({ x: tensor("float32", [1, 4], rowsOf(1, 9)) });
    expect(batches[1]).toMatchObject({ size: 1, requests: 1 });
  });

  it("never exceeds the engine profile's batch limit", async () => {
    const { batcher, batches } = await observedBatcher(2, 32, 20);
    await Promise.all(Array.from({ length: 6 }, (_, i) => batcher.run({ x: tensor("float32", [1, 4], rowsOf(1, i)) })));
    const sizes = batches.map((b) => b.size);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it("keeps a bad request from failing its batch-mates", async () => {
    const batcher = new DynamicBatcher(await denseContext(64), { maxBatchSize: 8, maxQueueDelayMs: 20 });
    // Same trailing dims would batch them; an int tensor has another key and runs on its own.
    const good = batcher.run({ x: tensor("float32", [1, 4], rowsOf(1, 0)) });
    const bad = batcher.run({ x: tensor("int32", [1, 4], [1, 2, 3, 4]) });
    await expect(good).resolves.toMatchObject({ batchSize: 1 });
    await expect(bad).rejects.toThrow();
  });

  it("calls each runThen callback once, after it returns, even when a batch-mate's callback throws", async () => {
    const { batcher, batches } = await observedBatcher(64, 16, 0);
    const calls: { i: number; error: unknown; rows?: number; sync: boolean }[] = [];
    // The throwing callback's error surfaces on its own, not in its batch-mates' answers.
    const thrown = new Promise<unknown>((resolve) => process.once("uncaughtException", resolve));
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 4; i++) {
        let returned = false;
        batcher.runThen({ x: tensor("float32", [1, 4], rowsOf(1, i)) }, (error, result) => {
          calls.push({ i, error, rows: result?.outputs.y?.shape[0], sync: !returned });
          if (calls.length === 4) resolve();
          if (i === 1) throw new Error("callback bug");
        });
        returned = true;
      }
    });
    expect(((await thrown) as Error).message).toBe("callback bug");
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls.sort((a, b) => a.i - b.i)).toEqual(
      [0, 1, 2, 3].map((i) => ({ i, error: null, rows: 1, sync: false })),
    );
    // One batch of four: the throw did not send the batch back to run request by request.
    expect(batches).toEqual([{ size: 4, requests: 4, computeMs: expect.any(Number) }]);
  });
});
