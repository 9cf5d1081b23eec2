import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createPrismaClient, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, hashApiKey, listApiKeys, revokeApiKey } from "./index.ts";
import { type ApiKeyVerifier, createApiKeyVerifier, type VerifyApiKeyResult } from "./verify-api-key.ts";

const REDIS_URL = process.env.REDIS_URL ?? "";
const verifierProcess = fileURLToPath(new URL("./testing/verifier-process.ts", import.meta.url));

describe("API keys against Postgres and Redis", () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let redis: Redis;
  let verifier: ApiKeyVerifier;
  const redisKeyPrefix = `kiln-test-${randomBytes(4).toString("hex")}:`;
  const deps = () => ({ prisma, redis, redisKeyPrefix });

  beforeAll(async () => {
    db = await createTestDatabase();
    prisma = createPrismaClient(db.url, { maxConnections: 3 });
    redis = new Redis(REDIS_URL);
    verifier = await createApiKeyVerifier({ ...deps(), cacheTtlMs: 3_600_000, lastUsedIntervalMs: 3_600_000 });
  });
  afterAll(async () => {
    await verifier?.close();
    await redis?.quit();
    await prisma?.$disconnect();
    await db?.drop();
  });

  async function seedOrg() {
    const org = await prisma.organization.create({
      data: { id: newId("org"), name: "Acme", slug: newId("org").toLowerCase() },
    });
    return org.id;
  }

  it("returns the key once and stores only its prefix and SHA-256", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: " ci ", scopes: ["inference", "inference"] });
    expect(key).toMatch(/^kiln_live_[0-9A-Za-z]{32}$/);
    expect(apiKey).toMatchObject({ orgId, name: "ci", scopes: ["inference"], revokedAt: null, lastUsedAt: null });
    expect(key.startsWith(apiKey.prefix)).toBe(true);
    const row = await prisma.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } });
    expect(row.hash).toBe(hashApiKey(key));
    expect(JSON.stringify(row)).not.toContain(key);
    expect(await listApiKeys(deps(), { orgId })).toEqual([apiKey]);
  });

  it("refuses bad names and scopes with a message that says what is wrong", async () => {
    const orgId = await seedOrg();
    await expect(createApiKey(deps(), { orgId, name: "x", scopes: ["root"] })).rejects.toThrow(
      'Unknown API key scope "root": use inference, read-only or admin',
    );
    await expect(createApiKey(deps(), { orgId, name: "x", scopes: [] })).rejects.toThrow(/at least one scope/);
    await expect(createApiKey(deps(), { orgId, name: "  ", scopes: ["admin"] })).rejects.toThrow(/name must be/);
  });

  it("keeps organizations apart: another org's deployment or key answers NOT_FOUND", async () => {
    const orgA = await seedOrg();
    const orgB = await seedOrg();
    const { apiKey } = await createApiKey(deps(), { orgId: orgA, name: "a", scopes: ["admin"] });
    await expect(revokeApiKey(deps(), { orgId: orgB, keyId: apiKey.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(
      createApiKey(deps(), {
        orgId: orgB,
        name: "b",
        scopes: ["inference"],
        deploymentId: "dep_01ABCDEFGHJKMNPQRSTVWXYZ012",
      }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await listApiKeys(deps(), { orgId: orgB })).toEqual([]);
    expect((await prisma.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).revokedAt).toBeNull();
  });

  it("verifies a good key and names the reason for every bad one", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: "v", scopes: ["inference", "read-only"] });
    expect(await verifier.verify(key)).toEqual({
      ok: true,
      key: { keyId: apiKey.id, orgId, scopes: ["inference", "read-only"], deploymentId: null },
    });
    expect(await verifier.verify("Bearer nonsense")).toMatchObject({ ok: false, reason: "malformed" });
    expect(await verifier.verify(`${key.slice(0, -1)}${key.endsWith("a") ? "b" : "a"}`)).toMatchObject({
      ok: false,
      reason: "unknown",
    });

    const { key: soonExpired, apiKey: expiring } = await createApiKey(deps(), {
      orgId,
      name: "e",
      scopes: ["inference"],
      expiresAt: new Date(Date.now() + 60_000),
    });
    await prisma.apiKey.update({ where: { id: expiring.id }, data: { expiresAt: new Date(Date.now() - 1) } });
    expect(await verifier.verify(soonExpired)).toMatchObject({
      ok: false,
      reason: "expired",
      message: "API key has expired",
    });
  });

  it("records the last use, at most once per interval", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: "t", scopes: ["inference"] });
    const local = await createApiKeyVerifier({ ...deps(), lastUsedIntervalMs: 3_600_000 });
    await local.verify(key);
    await local.close(); // waits for the pending write
    const first = (await prisma.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).lastUsedAt;
    expect(first).toBeInstanceOf(Date);

    const again = await createApiKeyVerifier({ ...deps(), lastUsedIntervalMs: 3_600_000 });
    await again.verify(key);
    await again.close();
    // A second process within the interval does not move it either: the write is conditional.
    expect((await prisma.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).lastUsedAt).toEqual(first);
  });

  it("answers cached keys without waiting (verifyCached), and a revocation takes effect there too", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: "c", scopes: ["inference"] });
    const local = await createApiKeyVerifier({ ...deps(), cacheTtlMs: 3_600_000, lastUsedIntervalMs: 3_600_000 });
    try {
      // Not looked up yet: the caller must wait for verify. Malformed keys need no lookup.
      expect(local.verifyCached(key)).toBeUndefined();
      expect(local.verifyCached("kiln_live_short")).toMatchObject({ ok: false, reason: "malformed" });
      const verified = await local.verify(key);
      expect(verified).toMatchObject({ ok: true, key: { keyId: apiKey.id, orgId, scopes: ["inference"] } });
      expect(local.verifyCached(key)).toEqual(verified);
      // An unknown key is cached as unknown too.
      const unknown = `${key.slice(0, -1)}${key.endsWith("a") ? "b" : "a"}`;
      expect(local.verifyCached(unknown)).toBeUndefined();
      expect(await local.verify(unknown)).toMatchObject({ ok: false, reason: "unknown" });
      expect(local.verifyCached(unknown)).toMatchObject({ ok: false, reason: "unknown" });

      await revokeApiKey(deps(), { orgId, keyId: apiKey.id });
      // The announcement evicts the key: the cached answer is gone, and the next lookup says revoked.
      while (local.verifyCached(key) !== undefined) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(await local.verify(key)).toEqual({ ok: false, reason: "revoked", message: "API key has been revoked" });
      expect(local.verifyCached(key)).toMatchObject({ ok: false, reason: "revoked" });
    } finally {
      await local.close();
    }
  });

  it("trusts a cached lookup for cacheTtlMs at most: a revocation whose announcement was lost shows after it", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: "ttl", scopes: ["inference"] });
    const local = await createApiKeyVerifier({ ...deps(), cacheTtlMs: 200, lastUsedIntervalMs: 3_600_000 });
    try {
      expect(await local.verify(key)).toMatchObject({ ok: true });
      // Revoked without an announcement (as if the message were lost).
      await prisma.apiKey.update({ where: { id: apiKey.id }, data: { revokedAt: new Date() } });
      expect(local.verifyCached(key)).toMatchObject({ ok: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(local.verifyCached(key)).toBeUndefined();
      expect(await local.verify(key)).toMatchObject({ ok: false, reason: "revoked" });
    } finally {
      await local.close();
    }
  });

  it("a revocation reaches the cache of a verifier in another process at once", async () => {
    const orgId = await seedOrg();
    const { key, apiKey } = await createApiKey(deps(), { orgId, name: "r", scopes: ["inference"] });
    const other = startVerifierProcess(db.url, redisKeyPrefix);
    try {
      expect(await other.next()).toEqual({ ready: true });
      expect(await other.ask(key)).toMatchObject({ ok: true, key: { keyId: apiKey.id } });
      // Revoked behind the verifiers' backs (no announcement): the other process still answers from its cache.
      await prisma.apiKey.update({ where: { id: apiKey.id }, data: { revokedAt: new Date() } });
      expect(await other.ask(key)).toMatchObject({ ok: true });

      await revokeApiKey(deps(), { orgId, keyId: apiKey.id });
      // The message may take a moment to arrive; ask until the answer changes (or the test times out).
      let answer: VerifyApiKeyResult;
      do answer = (await other.ask(key)) as VerifyApiKeyResult;
      while (answer.ok);
      expect(answer).toEqual({ ok: false, reason: "revoked", message: "API key has been revoked" });
    } finally {
      other.stop();
    }
    // This process's verifier learns it the same way.
    expect(await verifier.verify(key)).toMatchObject({
      ok: false,
      reason: "revoked",
      message: "API key has been revoked",
    });
  });
});

function startVerifierProcess(databaseUrl: string, redisKeyPrefix: string) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ["--import", "tsx", verifierProcess], {
    env: { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: redisKeyPrefix },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines: Interface = createInterface({ input: child.stdout });
  const iterator = lines[Symbol.asyncIterator]();
  const next = async (): Promise<unknown> => {
    const { value, done } = await iterator.next();
    if (done) throw new Error(`verifier process exited: ${stderr}`);
    return JSON.parse(value);
  };
  return {
    next,
    ask: (line: string) => {
      child.stdin.write(`${line}\n`);
      return next();
    },
    stop: () => child.kill("SIGTERM"),
  };
}
