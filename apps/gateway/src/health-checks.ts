import type { PrismaClient } from "@kiln/db";
import type { Redis } from "ioredis";

export type CheckResult = { ok: true; latencyMs: number } | { ok: false; latencyMs: number; error: string };

// A dependency that takes longer than this to answer a trivial query is, for routing, down.
const CHECK_TIMEOUT_MS = 2_000;

async function timed(run: () => Promise<unknown>): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export const checkPostgres = (prisma: PrismaClient) => timed(() => prisma.$queryRaw`SELECT 1`);

export const checkRedis = (redis: Redis) =>
  timed(async () => {
    // Right after start-up (or during a reconnect) the connection may still be opening; let that
    // attempt finish instead of reporting a Redis that is merely a few milliseconds away.
    if (redis.status === "connecting" || redis.status === "connect") await settled(redis);
    const answer = await redis.ping();
    if (answer !== "PONG") throw new Error(`unexpected PING answer: ${answer}`);
  });

/** Resolves when the connection is ready or has failed, whichever comes first. */
function settled(redis: Redis): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      redis.off("ready", done);
      redis.off("error", done);
      resolve();
    };
    redis.once("ready", done);
    redis.once("error", done);
  });
}
