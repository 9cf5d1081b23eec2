// A verifier in a process of its own, for the test that revocation reaches other processes' caches.
// Reads one key per stdin line and prints one JSON result per line. Its cache TTL is an hour, so a
// revoked key can only be refused because the revocation message arrived.
import { createInterface } from "node:readline";
import { createPrismaClient } from "@kiln/db";
import { Redis } from "ioredis";
import { createApiKeyVerifier } from "../verify-api-key.ts";

const prisma = createPrismaClient(process.env.DATABASE_URL ?? "", { maxConnections: 1 });
const redis = new Redis(process.env.REDIS_URL ?? "");
const verifier = await createApiKeyVerifier({
  prisma,
  redis,
  redisKeyPrefix: process.env.REDIS_KEY_PREFIX ?? "",
  cacheTtlMs: 3_600_000,
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const result = await verifier.verify(line).catch((error: Error) => ({ error: error.message }));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
await verifier.close();
await redis.quit();
await prisma.$disconnect();
