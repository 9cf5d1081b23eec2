// Test harness: a fresh migrated database, Redis under a random prefix, an fs store in a temp folder,
// real build queues, and callers acting as given users in given organizations.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBuildQueues } from "@kiln/builds";
import { createPrismaClient, type MembershipRole, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { createFsStorage } from "@kiln/storage";
import { Redis } from "ioredis";
import { type ApiDeps, type Context, ORG_HEADER, type SessionInfo } from "../context.ts";
import { createCaller } from "../root.ts";

export type TestUser = SessionInfo;

export type Harness = Awaited<ReturnType<typeof createHarness>>;

export async function createHarness() {
  const db: TestDatabase = await createTestDatabase();
  const prisma: PrismaClient = createPrismaClient(db.url, { maxConnections: 4 });
  const redisUrl = process.env.REDIS_URL ?? "";
  const redis = new Redis(redisUrl);
  const redisKeyPrefix = `kiln-test-${randomBytes(4).toString("hex")}:`;
  const artifactDir = await mkdtemp(join(tmpdir(), "kiln-api-test-"));
  const deps: ApiDeps = {
    prisma,
    redis,
    redisKeyPrefix,
    storage: createFsStorage(artifactDir),
    buildQueues: createBuildQueues({ redisUrl, redisKeyPrefix }),
    publicUrl: "http://kiln.test",
    // Callers below build their context directly; nothing in these tests reads cookies.
    getSession: async () => null,
  };

  async function createUser(name = "Ada"): Promise<TestUser> {
    const user = await prisma.user.create({
      data: { id: newId("usr"), name, email: `${name.toLowerCase()}-${randomBytes(3).toString("hex")}@example.com` },
    });
    const session = await prisma.session.create({
      data: {
        id: newId("ses"),
        userId: user.id,
        token: randomBytes(16).toString("hex"),
        expiresAt: new Date(Date.now() + 3_600_000),
      },
    });
    return {
      user: { id: user.id, email: user.email, name: user.name },
      session: { id: session.id, activeOrganizationId: null },
    };
  }

  async function addMember(orgId: string, who: TestUser, role: MembershipRole) {
    await prisma.membership.create({ data: { id: newId("mem"), orgId, userId: who.user.id, role } });
  }

  function contextFor(who: TestUser | null, orgId?: string): Context {
    const headers = new Headers({ "x-forwarded-for": "203.0.113.7", "user-agent": "vitest" });
    if (orgId) headers.set(ORG_HEADER, orgId);
    return { ...deps, headers, session: who, requestedOrgId: orgId ?? null, ip: "203.0.113.7", userAgent: "vitest" };
  }

  const callerFor = (who: TestUser | null, orgId?: string) => createCaller(contextFor(who, orgId));

  /** An organization with an owner, an admin and a member. */
  async function createOrg(name = "Acme") {
    const owner = await createUser(`${name}Owner`);
    const org = await callerFor(owner).orgs.create({ name });
    const admin = await createUser(`${name}Admin`);
    const member = await createUser(`${name}Member`);
    await addMember(org.id, admin, "admin");
    await addMember(org.id, member, "member");
    return {
      org,
      owner,
      admin,
      member,
      as: (who: TestUser) => callerFor(who, org.id),
    };
  }

  async function close() {
    await deps.buildQueues.close();
    await redis.quit();
    await prisma.$disconnect();
    await db.drop();
    await rm(artifactDir, { recursive: true, force: true });
  }

  return {
    deps,
    databaseUrl: db.url,
    prisma,
    redis,
    redisKeyPrefix,
    artifactDir,
    createUser,
    addMember,
    contextFor,
    callerFor,
    createOrg,
    close,
  };
}
