import { buildEventsKey } from "@kiln/builds";
import type { Redis } from "ioredis";

const KEEP_EVENTS = 2_000;
const KEEP_SECONDS = 7 * 24 * 3600;

/** Appends progress and log lines to a build's Redis stream, which builds.get reads. */
export function buildEventWriter(redis: Redis, redisKeyPrefix: string, buildId: string) {
  const key = buildEventsKey(redisKeyPrefix, buildId);
  const append = async (fields: Record<string, string>) => {
    const flat = Object.entries({ ...fields, at: new Date().toISOString() }).flat();
    await redis.multi().xadd(key, "MAXLEN", "~", KEEP_EVENTS, "*", ...flat).expire(key, KEEP_SECONDS).exec();
  };
  return {
    progress: (stage: string, fraction: number, message: string) =>
      append({ type: "progress", stage, fraction: fraction.toFixed(3), message }),
    log: (level: "info" | "warn" | "error", message: string) => append({ type: "log", level, message }),
  };
}
