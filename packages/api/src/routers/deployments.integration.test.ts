import { newId } from "@kiln/db";
import { seedBuild } from "@kiln/db/testing";
import { quotaKeys } from "@kiln/metering";
import { ReplicaRegistry } from "@kiln/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../testing/harness.ts";

describe("deployments and usage routers", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A model version and a build of it, written directly (the builds router has its own tests). */
  async function buildFor(orgId: string, status: "succeeded" | "running" = "succeeded") {
    const { buildId } = await seedBuild(h.prisma, orgId, {
      version: { signature: { inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }], outputs: [] } },
      build: { status },
    });
    return buildId;
  }

  it("creates from a succeeded build, shows live status and replicas, drains and deletes", async () => {
    const { org, member, admin, as } = await h.createOrg("Deployer");
    const api = as(member);
    const buildId = await buildFor(org.id);
    const { id } = await api.deployments.create({ name: "dense", buildId, maxBatchSize: 4 });
    expect(await api.deployments.get({ id })).toMatchObject({
      name: "dense",
      status: "cold",
      replicas: { ready: 0, loading: 0 },
      policy: { minReplicas: 0, maxReplicas: 1, maxBatchSize: 4, maxQueueDelayMs: 5, idleWindowSeconds: 300 },
    });
    const registry = new ReplicaRegistry(h.redis, h.redisKeyPrefix, 10_000);
    const record = {
      deploymentId: id,
      workerId: "w",
      url: "http://127.0.0.1:1",
      queueDepth: 0,
      loadedAt: "",
      heartbeatAt: "",
    };
    await registry.publish({ ...record, replicaId: "rep_a", status: "loading" });
    expect((await api.deployments.get({ id })).status).toBe("loading");
    await registry.publish({ ...record, replicaId: "rep_a", status: "ready" });
    expect(await api.deployments.get({ id })).toMatchObject({ status: "ready", replicas: { ready: 1, loading: 0 } });

    await api.deployments.update({ id, maxQueueDelayMs: 0 });
    expect((await api.deployments.get({ id })).policy.maxQueueDelayMs).toBe(0);

    await api.deployments.drain({ id });
    expect((await api.deployments.get({ id })).status).toBe("draining");
    expect(await registry.isDraining(id)).toBe(true);
    await expect(api.deployments.delete({ id })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await as(admin).deployments.delete({ id });
    await expect(api.deployments.get({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("enforces the plan and refuses bad input with a reason", async () => {
    const { org, member, as } = await h.createOrg("Limited");
    const api = as(member);
    const buildId = await buildFor(org.id);
    await expect(api.deployments.create({ name: "a", buildId, maxReplicas: 2 })).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "the Free plan allows at most 1 replicas per deployment",
    });
    await expect(
      api.deployments.create({ name: "a", buildId: await buildFor(org.id, "running") }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await api.deployments.create({ name: "a", buildId });
    await expect(api.deployments.create({ name: "a", buildId })).rejects.toMatchObject({ code: "CONFLICT" });
    await api.deployments.create({ name: "b", buildId });
    await expect(api.deployments.create({ name: "c", buildId })).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "the Free plan allows 2 deployments; delete one or upgrade",
    });
    await expect(api.deployments.create({ name: "Bad Name", buildId })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("hides other organizations' deployments and builds", async () => {
    const a = await h.createOrg("TenantA");
    const b = await h.createOrg("TenantB");
    const buildId = await buildFor(a.org.id);
    const { id } = await a.as(a.member).deployments.create({ name: "mine", buildId });
    const api = b.as(b.member);
    await expect(api.deployments.get({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(api.deployments.drain({ id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(api.deployments.create({ name: "theirs", buildId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await api.deployments.list()).toEqual([]);
  });

  it("reports usage per deployment and organization, and the month's quota", async () => {
    const { org, member, as } = await h.createOrg("Usage");
    const api = as(member);
    const { id } = await api.deployments.create({ name: "d", buildId: await buildFor(org.id) });
    const hour = new Date(Date.now() - 3600_000);
    hour.setUTCMinutes(0, 0, 0);
    await h.prisma.usageRollup.create({
      data: {
        id: newId("use"),
        orgId: org.id,
        deploymentId: id,
        hour,
        requests: 100n,
        errors: 2n,
        gpuMilliseconds: 1500n,
        bytesIn: 1000n,
        bytesOut: 500n,
        // 50 under 1 ms, 45 under 5 ms, 5 under 100 ms.
        latencyBuckets: [50n, 0n, 45n, 0n, 0n, 0n, 5n],
      },
    });
    const report = await api.usage.summary({});
    expect(report.org).toEqual({
      requests: 100,
      errors: 2,
      computeSeconds: 1.5,
      bytesIn: 1000,
      bytesOut: 500,
      p50Ms: 1,
      p95Ms: 5,
      p99Ms: 100,
    });
    expect(report.deployments).toEqual([expect.objectContaining({ deploymentId: id, name: "d", requests: 100 })]);
    expect(report.hourly).toHaveLength(1);

    await h.redis.set(quotaKeys(h.redisKeyPrefix, org.id, new Date()).monthRequests, 40);
    expect(await api.usage.quota()).toMatchObject({
      plan: "free",
      requests: { used: 40, limit: 10_000, remaining: 9_960 },
      deployments: { used: 1, limit: 2, remaining: 1 },
    });
  });
});
