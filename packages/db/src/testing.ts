import { randomBytes } from "node:crypto";
import pg from "pg";
import type { PrismaClient } from "./client.ts";
import type { Prisma } from "./generated/prisma/client.ts";
import { newId } from "./ids.ts";
import { migrate } from "./migrate.ts";

export type TestDatabase = { url: string; name: string; drop: () => Promise<void> };

/**
 * Creates a fresh, migrated database with a unique name on the server of `serverUrl` (DATABASE_URL
 * by default), so integration tests never see each other's rows. Call `drop()` when done.
 */
export async function createTestDatabase(
  serverUrl = process.env.DATABASE_URL,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  if (!serverUrl) {
    throw new Error("DATABASE_URL is not set: run tests with `npm test`, which provides a Postgres");
  }
  const name = `kiln_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const url = withDatabase(serverUrl, name);
  await admin(serverUrl, `CREATE DATABASE "${name}"`);
  try {
    if (options.migrate !== false) await migrate(url);
  } catch (error) {
    await admin(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    throw error;
  }
  return { url, name, drop: () => admin(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** The same server and credentials, another database. */
export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A model, its version 1 and a CPU build of it in `orgId`, written directly (for tests that need a
 * build without running the builds pipeline). Unset fields hold placeholders; `version` and
 * `build` override them.
 */
export async function seedBuild(
  prisma: PrismaClient,
  orgId: string,
  options: {
    modelName?: string;
    version?: Partial<Prisma.ModelVersionUncheckedCreateInput>;
    build?: Partial<Prisma.BuildUncheckedCreateInput>;
  } = {},
): Promise<{ modelId: string; versionId: string; buildId: string }> {
  const modelId = newId("mdl");
  await prisma.model.create({ data: { id: modelId, orgId, name: options.modelName ?? modelId.toLowerCase() } });
  const versionId = newId("mver");
  await prisma.modelVersion.create({
    data: {
      id: versionId,
      orgId,
      modelId,
      version: 1,
      sha256: "0",
      sizeBytes: 1n,
      storageKey: `models/${versionId}.onnx`,
      filename: "m.onnx",
      opset: 17,
      signature: {},
      ...options.version,
    },
  });
  const buildId = newId("bld");
  await prisma.build.create({
    data: {
      id: buildId,
      orgId,
      modelVersionId: versionId,
      target: "cpu",
      profiles: [],
      cacheKey: buildId,
      builderVersion: "t",
      ...options.build,
    },
  });
  return { modelId, versionId, buildId };
}

/**
 * A deployment of a seeded build, for tests that need real rows to hang usage, quotas or rollups
 * on: in `options.orgId`, or in a new organization.
 */
export async function seedDeployment(
  prisma: PrismaClient,
  options: { orgId?: string; name?: string } = {},
): Promise<{ orgId: string; modelId: string; buildId: string; deploymentId: string }> {
  let orgId = options.orgId;
  if (orgId === undefined) {
    orgId = newId("org");
    await prisma.organization.create({ data: { id: orgId, name: "o", slug: orgId.toLowerCase() } });
  }
  const { modelId, buildId } = await seedBuild(prisma, orgId);
  const deploymentId = newId("dep");
  await prisma.deployment.create({ data: { id: deploymentId, orgId, name: options.name ?? "d", buildId } });
  return { orgId, modelId, buildId, deploymentId };
}
