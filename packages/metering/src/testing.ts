// The usage-metering integration tests' shared setup: a fresh database holding one deployment, a
// Redis connection, usage events for that deployment and its hourly rollup. Registers the vitest
// hooks that create and drop them; read the fields inside tests (they are set in beforeAll).
import { randomBytes, randomUUID } from "node:crypto";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedDeployment, type TestDatabase } from "@kiln/db/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import type { UsageEvent } from "./usage-event.ts";

/** The hour the events fall in (UTC). */
export const USAGE_TEST_HOUR = Date.UTC(2026, 10, 22, 7);

export interface UsageFixture {
  readonly prisma: PrismaClient;
  readonly redis: Redis;
  readonly orgId: string;
  readonly deploymentId: string;
  /** The test database's connection URL. */
  readonly databaseUrl: string;
  /** A successful request one minute into USAGE_TEST_HOUR, with `over` applied. */
  event(over?: Partial<UsageEvent>): UsageEvent;
  /** The deployment's rollup row for `hour`, or null. */
  rollup(hour?: number): ReturnType<PrismaClient["usageRollup"]["findUnique"]>;
  /** A stream prefix no other test uses. */
  freshPrefix(): string;
}

export function useUsageFixture(): UsageFixture {
  let db: TestDatabase | undefined;
  const state = {} as { prisma: PrismaClient; redis: Redis; orgId: string; deploymentId: string };
  beforeAll(async () => {
    db = await createTestDatabase();
    state.prisma = createPrismaClient(db.url);
    state.redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    ({ orgId: state.orgId, deploymentId: state.deploymentId } = await seedDeployment(state.prisma));
  });
  afterAll(async () => {
    state.redis?.disconnect();
    await state.prisma?.$disconnect();
    await db?.drop();
  });
  return {
    get prisma() {
      return state.prisma;
    },
    get redis() {
      return state.redis;
    },
    get orgId() {
      return state.orgId;
    },
    get deploymentId() {
      return state.deploymentId;
    },
    get databaseUrl() {
      if (!db) throw new Error("the usage fixture's database exists inside tests only");
      return db.url;
    },
    event: (over = {}) => ({
      eventId: randomUUID(),
      orgId: state.orgId,
      deploymentId: state.deploymentId,
      computeMs: 2.5,
      batchShare: 0.5,
      bytesIn: 100,
      bytesOut: 40,
      status: "success",
      latencyMs: 3,
      at: USAGE_TEST_HOUR + 60_000,
      ...over,
    }),
    rollup: (hour = USAGE_TEST_HOUR) =>
      state.prisma.usageRollup.findUnique({
        where: {
          orgId_deploymentId_hour: { orgId: state.orgId, deploymentId: state.deploymentId, hour: new Date(hour) },
        },
      }),
    freshPrefix: () => `test:${randomBytes(4).toString("hex")}:`,
  };
}
