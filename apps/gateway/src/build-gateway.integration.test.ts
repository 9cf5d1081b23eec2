import { createServer } from "node:net";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { createLogger } from "@kiln/logger";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildGateway } from "./build-gateway.ts";

const REDIS_URL = process.env.REDIS_URL ?? "";
type Check = { ok: boolean; error?: string };
type ReadyBody = { ready: boolean; failed?: string[]; checks: { postgres: Check; redis: Check } };
const logger = createLogger({ service: "gateway-test", level: "silent" });

/** A port nothing listens on: bound by us a moment ago, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("gateway health", () => {
  let db: TestDatabase;
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** Starts a gateway on a real port and returns its base URL. */
  async function start(overrides: { DATABASE_URL?: string; REDIS_URL?: string } = {}): Promise<string> {
    const app = buildGateway({ DATABASE_URL: db.url, REDIS_URL, LOG_LEVEL: "silent", ...overrides }, { logger });
    apps.push(app);
    return app.listen({ host: "127.0.0.1", port: 0 });
  }

  it("is live", async () => {
    const res = await fetch(`${await start()}/v2/health/live`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ live: true });
  });

  it("is ready while Postgres and Redis answer", async () => {
    const base = await start();
    // The Redis connection is opened in the background; give it a moment on a busy machine.
    let res = await fetch(`${base}/v2/health/ready`);
    for (let i = 0; i < 20 && res.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await fetch(`${base}/v2/health/ready`);
    }
    expect(res.status).toBe(200);
    const body = (await res.json()) as ReadyBody;
    expect(body).toMatchObject({ ready: true, checks: { postgres: { ok: true }, redis: { ok: true } } });
  });

  it("answers 503 naming Redis when Redis is unreachable", async () => {
    const base = await start({ REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    const res = await fetch(`${base}/v2/health/ready`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as ReadyBody;
    expect(body).toMatchObject({ ready: false, failed: ["redis"], checks: { postgres: { ok: true }, redis: { ok: false } } });
    expect(body.checks.redis.error).toEqual(expect.any(String));
    // Liveness does not depend on dependencies: restarting the process would not fix Redis.
    expect((await fetch(`${base}/v2/health/live`)).status).toBe(200);
  });

  it("answers 503 naming Postgres when Postgres is unreachable", async () => {
    const base = await start({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${await closedPort()}/kiln` });
    const res = await fetch(`${base}/v2/health/ready`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as ReadyBody;
    expect(body.failed).toEqual(["postgres"]);
    expect(body.checks.postgres.ok).toBe(false);
  });

  it("answers 404 for unknown routes", async () => {
    expect((await fetch(`${await start()}/v2/nope`)).status).toBe(404);
  });
});
