import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createLogger } from "@kiln/logger";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker, type WorkerRegistration, workerKey } from "./worker.ts";

const REDIS_URL = process.env.REDIS_URL ?? "";
const logger = createLogger({ service: "worker-test", level: "silent" });
// `node --import tsx`, not the tsx CLI: the CLI SIGKILLs a child that is slow to acknowledge a signal.
const tsx = ["--import", "tsx"];
const main = fileURLToPath(new URL("./main.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("worker", () => {
  let redis: Redis;
  // Every test writes under its own prefix, so tests and a running Kiln can share one Redis.
  const prefix = () => `kiln-test-${randomBytes(4).toString("hex")}:`;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await redis?.quit();
  });

  async function waitForKey(key: string, timeoutMs = 20_000): Promise<WorkerRegistration> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
      const value = await redis.get(key);
      if (value) return JSON.parse(value);
    }
    throw new Error(`${key} did not appear within ${timeoutMs} ms`);
  }

  it("registers with a TTL, heartbeats, and deregisters on stop", async () => {
    const config = {
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix(),
      WORKER_TARGET: "cpu",
      WORKER_SLOT: "cpu-0",
      WORKER_ID: "w1",
      WORKER_HEARTBEAT_MS: 200,
    };
    const worker = await startWorker(config, logger);
    expect(worker.key).toBe(workerKey(config.REDIS_KEY_PREFIX, "w1"));

    const first = await waitForKey(worker.key);
    expect(first).toMatchObject({ id: "w1", target: "cpu", slot: "cpu-0", pid: process.pid });
    const ttl = await redis.pttl(worker.key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);

    await sleep(500);
    const later = await waitForKey(worker.key);
    expect(Date.parse(later.heartbeatAt)).toBeGreaterThan(Date.parse(first.heartbeatAt));
    expect(later.startedAt).toBe(first.startedAt);

    await worker.stop();
    expect(await redis.exists(worker.key)).toBe(0);
  });

  it("runs as a process and exits 0 on SIGTERM, leaving no registration", async () => {
    const keyPrefix = prefix();
    const child = spawn(process.execPath, [...tsx, main], {
      env: { ...process.env, REDIS_URL, REDIS_KEY_PREFIX: keyPrefix, WORKER_ID: "proc", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));

    const key = workerKey(keyPrefix, "proc");
    const registration = await waitForKey(key);
    expect(registration.target).toBe("cpu");

    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code, output).toBe(0);
    expect(await redis.exists(key)).toBe(0);
    // Logs are JSON lines; the last ones say it stopped.
    const lines = output
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ service: "worker", msg: "worker stopped" });
  });

  it("refuses to start with a malformed setting and names it", async () => {
    const child = spawn(process.execPath, [...tsx, main], {
      env: { ...process.env, REDIS_URL, WORKER_TARGET: "tpu-v5" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(1);
    expect(stderr).toMatch(/WORKER_TARGET: must be "cpu" or "cuda-sm<arch>"/);
  });
});
