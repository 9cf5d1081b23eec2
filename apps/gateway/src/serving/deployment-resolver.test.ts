// The deployment cache is per organization: a name resolves within the asking key's org only,
// whether the answer comes from Postgres or from the cache (resolve or resolveCached).
import type { PrismaClient } from "@kiln/db";
import { describe, expect, it } from "vitest";
import { DeploymentResolver } from "./deployment-resolver.ts";

function row(orgId: string, name: string, id: string) {
  return {
    id,
    orgId,
    name,
    status: "ready",
    maxBatchSize: 8,
    maxQueueDelayMs: 2,
    idleWindowSeconds: 300,
    minReplicas: 0,
    maxReplicas: 4,
    build: {
      id: `bld_${id}`,
      target: "cpu",
      engineStorageKey: `engines/${id}.kiln`,
      deviceMemoryBytes: 0n,
      profiles: [],
      modelVersion: { version: 1, signature: { inputs: [], outputs: [] } },
    },
  };
}

function fakePrisma(rows: ReturnType<typeof row>[]) {
  const queries: string[] = [];
  const prisma = {
    deployment: {
      findUnique: async ({ where }: { where: { orgId_name: { orgId: string; name: string } } }) => {
        const { orgId, name } = where.orgId_name;
        queries.push(`${orgId}/${name}`);
        return rows.find((r) => r.orgId === orgId && r.name === name) ?? null;
      },
    },
  } as unknown as PrismaClient;
  return { prisma, queries };
}

describe("DeploymentResolver", () => {
  it("keeps organizations apart in its cache, including names only another org has", async () => {
    const { prisma, queries } = fakePrisma([row("org_a", "dense", "dep_a"), row("org_b", "dense", "dep_b")]);
    const resolver = new DeploymentResolver(prisma, { replicaCap: async () => 2 });
    expect(resolver.resolveCached("org_a", "dense")).toBeUndefined();
    expect((await resolver.resolve("org_a", "dense")).served.deploymentId).toBe("dep_a");
    // Cached for org A only: org B's lookup of the same name goes to Postgres and finds its own.
    expect(resolver.resolveCached("org_a", "dense")?.served.deploymentId).toBe("dep_a");
    expect(resolver.resolveCached("org_b", "dense")).toBeUndefined();
    expect((await resolver.resolve("org_b", "dense")).served).toMatchObject({ deploymentId: "dep_b", orgId: "org_b" });
    expect(resolver.resolveCached("org_b", "dense")?.served.deploymentId).toBe("dep_b");
    expect(resolver.resolveCached("org_a", "dense")?.served.deploymentId).toBe("dep_a");
    // The plan's replica cap applies.
    expect(resolver.resolveCached("org_a", "dense")?.served.maxReplicas).toBe(2);
    expect(queries).toEqual(["org_a/dense", "org_b/dense"]);
  });

  it("answers 404 for a name its org does not have, from the cache too", async () => {
    const { prisma, queries } = fakePrisma([row("org_a", "secret", "dep_a")]);
    const resolver = new DeploymentResolver(prisma, { replicaCap: async () => 2 });
    await resolver.resolve("org_a", "secret");
    await expect(resolver.resolve("org_c", "secret")).rejects.toMatchObject({ status: 404 });
    expect(() => resolver.resolveCached("org_c", "secret")).toThrow("model 'secret' not found");
    await expect(resolver.resolve("org_c", "secret")).rejects.toMatchObject({ status: 404 });
    expect(queries).toEqual(["org_a/secret", "org_c/secret"]);
  });
});
