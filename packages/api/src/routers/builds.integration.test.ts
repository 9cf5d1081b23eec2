import { buildQueueName, bullPrefix, createBuildQueues } from "@kiln/builds";
import { denseModel } from "@kiln/builds/testing";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadModel } from "../models/upload-model.ts";
import { createCaller } from "../root.ts";
import { createHarness, type Harness } from "../testing/harness.ts";

// The builds router without a worker: what it validates, queues and refuses. The worker side is
// tested in apps/worker/src/builds with real builds.
describe("builds router", () => {
  let h: Harness;
  let queue: Queue;
  beforeAll(async () => {
    h = await createHarness();
    queue = new Queue(buildQueueName("cpu"), {
      connection: { url: process.env.REDIS_URL },
      prefix: bullPrefix(h.redisKeyPrefix),
    });
  });
  afterAll(async () => {
    await queue?.close();
    await h?.close();
  });

  async function setup(name: string) {
    const org = await h.createOrg(name);
    const response = await uploadModel(
      new Request(`http://kiln.test/api/models/upload?name=${name.toLowerCase()}`, {
        method: "POST",
        body: denseModel(),
      }),
      h.contextFor(org.member, org.org.id),
    );
    const { modelVersionId } = (await response.json()) as { modelVersionId: string };
    return { ...org, modelVersionId, api: org.as(org.member) };
  }

  it("queues a build on its target's queue; cancel removes the job, retry queues it again", async () => {
    const { api, modelVersionId } = await setup("Queued");
    const build = await api.builds.create({
      modelVersionId,
      target: "cpu",
      profiles: [{ x: { min: [1, 4], opt: [2, 4], max: [4, 4] } }],
    });
    expect(build).toMatchObject({ status: "queued", cached: false, target: "cpu", precision: "fp32", attempts: 0 });
    expect((await queue.getJob(build.id))?.data).toEqual({ version: 1, buildId: build.id });
    // The same request while the first is queued is that build, not a second one.
    const same = await api.builds.create({
      modelVersionId,
      target: "cpu",
      profiles: [{ x: { min: [1, 4], opt: [2, 4], max: [4, 4] } }],
    });
    expect(same.id).toBe(build.id);

    expect(await api.builds.cancel({ id: build.id })).toEqual({ id: build.id, status: "canceled" });
    expect(await queue.getJob(build.id)).toBeUndefined();
    expect(await api.builds.get({ id: build.id })).toMatchObject({
      status: "canceled",
      error: "Canceled by a user",
      progress: null,
      logs: [],
    });
    await expect(api.builds.downloadUrl({ id: build.id })).rejects.toMatchObject({ code: "CONFLICT" });

    expect(await api.builds.retry({ id: build.id })).toEqual({ id: build.id, status: "queued" });
    expect(await queue.getJob(build.id)).toBeDefined();
    await expect(api.builds.retry({ id: build.id })).rejects.toMatchObject({ code: "CONFLICT" });
    expect((await api.builds.list({})).map((b) => [b.id, b.modelName, b.modelVersion])).toEqual([
      [build.id, "queued", 1],
    ]);
  });

  it("marks a build failed, with a message, when the queue cannot take it", async () => {
    const { org, member, modelVersionId } = await setup("QueueDown");
    const closed = createBuildQueues({ redisUrl: process.env.REDIS_URL ?? "", redisKeyPrefix: h.redisKeyPrefix });
    await closed.close();
    const caller = createCaller({ ...h.contextFor(member, org.id), buildQueues: closed });
    await expect(caller.builds.create({ modelVersionId, target: "cpu" })).rejects.toThrow();
    const [build] = await h.prisma.build.findMany({ where: { orgId: org.id } });
    expect(build).toMatchObject({
      status: "failed",
      error: "Kiln could not queue this build (the job queue did not answer). Retry it in a moment.",
    });
  });

  it("refuses profiles that do not fit the model, naming the input and dimension", async () => {
    const { api, modelVersionId } = await setup("Profiles");
    const create = (profile: Record<string, { min: number[]; opt: number[]; max: number[] }>) =>
      api.builds.create({ modelVersionId, target: "cpu", profiles: [profile] });
    await expect(create({ y: { min: [1, 4], opt: [1, 4], max: [1, 4] } })).rejects.toMatchObject({
      message: 'Profile 1, input "y": the model has no such input',
    });
    await expect(create({ x: { min: [1], opt: [1], max: [1] } })).rejects.toMatchObject({
      message: 'Profile 1, input "x": expected 2 dimensions, got 1',
    });
    await expect(create({ x: { min: [4, 4], opt: [2, 4], max: [8, 4] } })).rejects.toMatchObject({
      message: 'Profile 1, input "x", dimension 0: need 1 <= min <= opt <= max (got 4, 2, 8)',
    });
    await expect(create({ x: { min: [1, 3], opt: [1, 4], max: [1, 4] } })).rejects.toMatchObject({
      message: 'Profile 1, input "x", dimension 1 is fixed at 4 by the model',
    });
  });

  it("offers GPU targets only while a worker registered for them", async () => {
    const { api, modelVersionId } = await setup("Targets");
    expect(await api.builds.targets()).toEqual([{ target: "cpu", workers: 0, label: "CPU", precisions: ["fp32"] }]);
    await expect(api.builds.create({ modelVersionId, target: "cuda-sm90" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "No worker offers cuda-sm90 right now: choose one of cpu",
    });
    // What a GPU worker's heartbeat writes (apps/worker/src/worker.ts).
    await h.redis.set(
      `${h.redisKeyPrefix}worker:gpu-1`,
      JSON.stringify({ id: "gpu-1", target: "cuda-sm90" }),
      "PX",
      10_000,
    );
    expect(await api.builds.targets()).toEqual([
      { target: "cpu", workers: 0, label: "CPU", precisions: ["fp32"] },
      {
        target: "cuda-sm90",
        workers: 1,
        label: "NVIDIA GPU, compute capability 9.0",
        precisions: ["fp32", "fp16", "int8"],
      },
    ]);
    expect(await api.builds.create({ modelVersionId, target: "cuda-sm90" })).toMatchObject({
      status: "queued",
      target: "cuda-sm90",
    });
    await expect(api.builds.create({ modelVersionId, target: "tpu" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("answers NOT_FOUND for another organization's builds and versions", async () => {
    const a = await setup("BuildsA");
    const b = await setup("BuildsB");
    const build = await b.api.builds.create({ modelVersionId: b.modelVersionId, target: "cpu" });
    for (const call of [
      () => a.api.builds.get({ id: build.id }),
      () => a.api.builds.events({ id: build.id }),
      () => a.api.builds.cancel({ id: build.id }),
      () => a.api.builds.retry({ id: build.id }),
      () => a.api.builds.downloadUrl({ id: build.id }),
      () => a.api.builds.create({ modelVersionId: b.modelVersionId, target: "cpu" }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: "NOT_FOUND" });
    }
    expect(await a.api.builds.list({ modelVersionId: b.modelVersionId })).toEqual([]);
    expect((await b.api.builds.get({ id: build.id })).status).toBe("queued");
  });
});
