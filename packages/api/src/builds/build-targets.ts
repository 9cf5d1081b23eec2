import type { Redis } from "ioredis";

export const BUILD_TARGET_PATTERN = /^(cpu|cuda-sm\d{2,3})$/;

export type BuildPrecisionName = "fp32" | "fp16" | "int8";
export type BuildTarget = { target: string; workers: number; label: string; precisions: BuildPrecisionName[] };

/**
 * The precisions a target builds: the CPU builder makes FP32 engines; GPU classes add FP16 and INT8
 * (INT8 with a calibration set).
 */
export function precisionsOf(target: string): BuildPrecisionName[] {
  return target === "cpu" ? ["fp32"] : ["fp32", "fp16", "int8"];
}

/**
 * The targets builds can ask for, from the worker registry (`<prefix>worker:<id>` keys written by
 * every worker's heartbeat): cpu always (a CPU build waits for a CPU worker), GPU classes only while
 * a live worker offers them.
 */
export async function registeredBuildTargets(redis: Redis, redisKeyPrefix: string): Promise<BuildTarget[]> {
  const counts = new Map<string, number>([["cpu", 0]]);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${redisKeyPrefix}worker:*`, "COUNT", 200);
    cursor = next;
    const values = keys.length > 0 ? await redis.mget(...keys) : [];
    for (const value of values) {
      try {
        const target = (JSON.parse(value ?? "{}") as { target?: string }).target;
        if (target && BUILD_TARGET_PATTERN.test(target)) counts.set(target, (counts.get(target) ?? 0) + 1);
      } catch {
        // Not a worker registration (another tool's key under the same prefix).
      }
    }
  } while (cursor !== "0");
  return [...counts].map(([target, workers]) => ({
    target,
    workers,
    label: target === "cpu" ? "CPU" : `NVIDIA GPU, compute capability ${target.slice("cuda-sm".length, -1)}.${target.slice(-1)}`,
    precisions: precisionsOf(target),
  }));
}
