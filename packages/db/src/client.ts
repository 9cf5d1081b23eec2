import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.ts";

export type { PrismaClient } from "./generated/prisma/client.ts";

/**
 * A Prisma client over node-postgres. Prisma 7 talks to the database only through a driver
 * adapter; one client (and its pool) per process is enough.
 */
export function createPrismaClient(databaseUrl: string, options: { maxConnections?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 10,
    // Fail fast instead of queueing forever when Postgres is down; health checks rely on it.
    connectionTimeoutMillis: 5_000,
  });
  return new PrismaClient({ adapter });
}
