import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient, type PrismaClient } from "./client.ts";
import { newId } from "./ids.ts";
import { createTestDatabase, type TestDatabase } from "./testing.ts";

describe("Prisma client on a migrated database", () => {
  let db: TestDatabase;
  let prisma: PrismaClient;

  beforeAll(async () => {
    db = await createTestDatabase();
    prisma = createPrismaClient(db.url, { maxConnections: 2 });
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await db?.drop();
  });

  async function seedOrg() {
    const org = await prisma.organization.create({
      data: { id: newId("org"), name: "Acme", slug: `acme-${newId("org").slice(-6).toLowerCase()}` },
    });
    const model = await prisma.model.create({ data: { id: newId("mdl"), orgId: org.id, name: "resnet50" } });
    const version = await prisma.modelVersion.create({
      data: {
        id: newId("mver"),
        orgId: org.id,
        modelId: model.id,
        version: 1,
        sha256: "a".repeat(64),
        sizeBytes: 102_400_000n,
        storageKey: `models/${model.id}/1.onnx`,
        filename: "resnet50.onnx",
        opset: 17,
        signature: { inputs: [{ name: "input", dtype: "float32", shape: ["batch", 3, 224, 224] }] },
      },
    });
    const build = await prisma.build.create({
      data: {
        id: newId("bld"),
        orgId: org.id,
        modelVersionId: version.id,
        target: "cpu",
        profiles: {},
        cacheKey: "k1",
        builderVersion: "0.1.0",
      },
    });
    const deployment = await prisma.deployment.create({
      data: { id: newId("dep"), orgId: org.id, name: "prod", buildId: build.id },
    });
    return { org, model, version, build, deployment };
  }

  it("creates the product's core rows with their defaults", async () => {
    const { build, deployment, version } = await seedOrg();
    expect(build.status).toBe("queued");
    expect(build.precision).toBe("fp32");
    expect(build.attempts).toBe(0);
    expect(deployment).toMatchObject({ status: "cold", minReplicas: 0, maxBatchSize: 8 });
    expect(version.sizeBytes).toBe(102_400_000n);
  });

  it("keeps one usage rollup per organization, deployment and hour", async () => {
    const { org, deployment } = await seedOrg();
    const hour = new Date("2025-01-01T10:00:00Z");
    const row = { orgId: org.id, deploymentId: deployment.id, hour };
    await prisma.usageRollup.create({ data: { id: newId("use"), ...row, requests: 1n } });
    await expect(prisma.usageRollup.create({ data: { id: newId("use"), ...row } })).rejects.toThrow();
    // The way the metering job adds to an hour: an upsert on the unique key.
    await prisma.usageRollup.upsert({
      where: { orgId_deploymentId_hour: row },
      create: { id: newId("use"), ...row },
      update: { requests: { increment: 2n } },
    });
    expect((await prisma.usageRollup.findFirstOrThrow({ where: row })).requests).toBe(3n);
  });

  it("refuses to delete a build that a deployment serves", async () => {
    const { build } = await seedOrg();
    await expect(prisma.build.delete({ where: { id: build.id } })).rejects.toThrow();
  });

  it("deletes everything an organization owns with it", async () => {
    const { org, deployment } = await seedOrg();
    await prisma.usageRollup.create({
      data: { id: newId("use"), orgId: org.id, deploymentId: deployment.id, hour: new Date("2025-01-01T00:00:00Z") },
    });
    await prisma.apiKey.create({
      data: {
        id: newId("key"),
        orgId: org.id,
        name: "ci",
        prefix: `kiln_live_${newId("key").slice(-8)}`,
        hash: newId("key"),
        scopes: ["predict"],
        deploymentId: deployment.id,
      },
    });
    await prisma.organization.delete({ where: { id: org.id } });
    for (const count of [
      prisma.deployment.count({ where: { orgId: org.id } }),
      prisma.build.count({ where: { orgId: org.id } }),
      prisma.apiKey.count({ where: { orgId: org.id } }),
      prisma.usageRollup.count({ where: { orgId: org.id } }),
    ]) {
      expect(await count).toBe(0);
    }
  });
});
