// The build pipeline end to end: the API enqueues, real worker processes (apps/worker main) run the
// real native CPU builder, and the API reads progress, logs, the report and the engine back.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { downloadEngine, uploadModel } from "@kiln/api";
import { createHarness, type Harness } from "@kiln/api/testing";
import { deepModel, denseCalibration, denseModel } from "@kiln/builds/testing";
import { newId, type Prisma } from "@kiln/db";
import { loadEngine } from "@kiln/engine";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../main.ts", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// Slow enough on the CPU builder (each of 30 layers is timed at a batch of 8192) to act mid-build.
const SLOW_PROFILE = [{ x: { min: [1, 256], opt: [8192, 256], max: [8192, 256] } }];

// Each test starts worker processes and runs real builds on a shared machine: minutes, not seconds.
describe("build pipeline with real workers and the real CPU builder", { timeout: 240_000 }, () => {
  let h: Harness;
  let org: Awaited<ReturnType<Harness["createOrg"]>>;
  const workers: ChildProcess[] = [];

  beforeAll(async () => {
    h = await createHarness();
    org = await h.createOrg("Builds");
  }, 60_000);
  afterEach(async () => {
    await Promise.all(workers.splice(0).map(stopWorker));
  });
  afterAll(async () => {
    await h?.close();
  });

  function startWorker(id: string): ChildProcess {
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      env: {
        ...process.env,
        DATABASE_URL: h.databaseUrl,
        REDIS_KEY_PREFIX: h.redisKeyPrefix,
        ARTIFACT_STORE: "fs",
        ARTIFACT_DIR: h.artifactDir,
        WORKER_ID: id,
        WORKER_TARGET: "cpu",
        BUILD_LOCK_MS: "2000",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    workers.push(child);
    return child;
  }
  async function stopWorker(child: ChildProcess) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }

  async function upload(name: string, bytes: Uint8Array) {
    const request = new Request(`http://kiln.test/api/models/upload?name=${name}`, { method: "POST", body: bytes });
    const response = await uploadModel(request, h.contextFor(org.member, org.org.id));
    expect(response.status).toBe(201);
    return (await response.json()) as { modelVersionId: string };
  }
  const api = () => org.as(org.member);

  async function waitFor<T>(read: () => Promise<T>, until: (value: T) => boolean, what: string, timeoutMs = 120_000) {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
      const value = await read();
      if (until(value)) return value;
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  const buildOf = (id: string) => api().builds.get({ id });

  /** A calibration set row and file, as the upload route leaves them (without its checks). */
  async function storeCalibration(modelVersionId: string, bytes: Uint8Array) {
    const id = newId("cal");
    const storageKey = `calibration/${org.org.id}/${id}.npz`;
    const { sha256 } = await h.deps.storage.putStream(storageKey, Readable.from([Buffer.from(bytes)]));
    return h.prisma.calibrationSet.create({
      data: {
        id,
        orgId: org.org.id,
        modelVersionId,
        filename: "calib.npz",
        sha256,
        sizeBytes: BigInt(bytes.length),
        storageKey,
        sampleCount: 8,
        arrays: [],
      },
    });
  }
  /** A build row queued directly, for options the API would refuse. */
  async function queueRawBuild(modelVersionId: string, fields: Partial<Prisma.BuildUncheckedCreateInput>) {
    const id = newId("bld");
    await h.prisma.build.create({
      data: {
        id,
        orgId: org.org.id,
        modelVersionId,
        target: "cpu",
        profiles: [],
        cacheKey: id,
        builderVersion: "test",
        ...fields,
      },
    });
    await h.deps.buildQueues.enqueue({ id, target: "cpu" });
    return id;
  }

  it("builds on CPU with progress and logs, stores engine and report, and serves the same build from cache", async () => {
    startWorker("builder-1");
    const { modelVersionId } = await upload("dense", denseModel());
    const profiles = [{ x: { min: [1, 4], opt: [4, 4], max: [8, 4] } }];
    const created = await api().builds.create({ modelVersionId, target: "cpu", profiles });
    expect(created).toMatchObject({ status: "queued", cached: false, modelName: "dense", modelVersion: 1 });

    // The worker marks the build succeeded, then records its final progress and log line: wait for
    // those too (reading at the status flip alone raced them on a loaded CI machine).
    const done = await waitFor(
      () => buildOf(created.id),
      (b) =>
        b.status === "failed" ||
        (b.status === "succeeded" && b.logs.some((l) => l.message.startsWith("Engine stored"))),
      "the build and its final log line",
    );
    expect(done.status, done.error ?? "").toBe("succeeded");
    expect(done.progress).toEqual({ stage: "done", fraction: 1, message: "Engine ready" });
    expect(done.logs.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Build started on worker builder-1 \(attempt 1\)$/),
        expect.stringMatching(/^Engine stored/),
      ]),
    );
    expect(done.report?.layers.length).toBeGreaterThan(0);
    expect(done.report?.fusions).toBeTypeOf("object");
    expect(Number(done.engineSizeBytes)).toBeGreaterThan(0);
    expect(done.downloadUrl).toBe(`/api/builds/${created.id}/engine`);
    // A live view asks only for what is new since the last event it saw.
    const events = await api().builds.events({ id: created.id });
    expect(events.length).toBeGreaterThan(3);
    expect(await api().builds.events({ id: created.id, after: events[1]?.id })).toEqual(events.slice(2));

    // The engine downloads and loads in the real runtime.
    const download = await downloadEngine(h.contextFor(org.member, org.org.id), created.id);
    expect(download.status).toBe(200);
    const engine = loadEngine(new Uint8Array(await download.arrayBuffer()));
    expect(engine.inputs).toEqual([{ name: "x", dtype: "float32", shape: ["batch", 4] }]);

    const again = await api().builds.create({ modelVersionId, target: "cpu", profiles });
    expect(again).toMatchObject({ status: "succeeded", cached: true });
    expect(again.id).not.toBe(created.id);
    expect((await buildOf(again.id)).report?.cachedFromBuildId).toBe(created.id);
    // Other options are another build.
    const other = await api().builds.create({
      modelVersionId,
      target: "cpu",
      profiles: [{ x: { min: [1, 4], opt: [2, 4], max: [2, 4] } }],
    });
    expect(other.cached).toBe(false);
    await waitFor(
      () => buildOf(other.id),
      (b) => b.status === "succeeded",
      "the second build",
    );

    // Another organization sees none of it.
    const stranger = await h.createOrg("Stranger");
    for (const call of [
      () => stranger.as(stranger.owner).builds.get({ id: created.id }),
      () => stranger.as(stranger.owner).builds.events({ id: created.id }),
      () => stranger.as(stranger.owner).builds.cancel({ id: created.id }),
      () => stranger.as(stranger.owner).builds.retry({ id: created.id }),
      () => stranger.as(stranger.owner).builds.downloadUrl({ id: created.id }),
      () => stranger.as(stranger.owner).builds.create({ modelVersionId, target: "cpu" }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: "NOT_FOUND" });
    }
    expect(await stranger.as(stranger.owner).builds.list({})).toEqual([]);
    expect((await downloadEngine(h.contextFor(stranger.owner, stranger.org.id), created.id)).status).toBe(404);
  });

  it("fails a build the builder rejects with a message the user can act on", async () => {
    startWorker("builder-2");
    const { modelVersionId } = await upload("dense-int8", denseModel(3));
    // The API refuses INT8 on CPU up front; a row that asks for it anyway (queued by an older Kiln,
    // say) reaches the builder, which refuses it with a reason.
    await expect(api().builds.create({ modelVersionId, target: "cpu", precision: "int8" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/^INT8 needs a GPU target/),
    });
    const calibration = denseCalibration(8);
    const set = await storeCalibration(modelVersionId, calibration);
    const id = await queueRawBuild(modelVersionId, {
      precision: "int8",
      calibrationSetId: set.id,
      calibrationStorageKey: set.storageKey,
      calibrationSha256: set.sha256,
      calibrationMethod: "minmax",
    });
    const done = await waitFor(
      () => buildOf(id),
      (b) => b.status === "succeeded" || b.status === "failed",
      "the build",
    );
    expect(done.status).toBe("failed");
    expect(done.error).toBe(
      "The build options are not valid for this model or target: precision int8 is not available on the cpu backend: " +
        "it builds fp32 only. Check the precision (CPU targets build FP32) and the profiles' shapes against the model's inputs.",
    );
    // The worker read the calibration set before the builder ran.
    expect(done.logs.map((l) => l.message)).toContain(
      `Loaded the calibration set: 8 samples, ${calibration.length} bytes; ranges by minmax`,
    );
    expect(done.calibration).toMatchObject({ setId: set.id, method: "minmax", sampleCount: 8 });
    expect(done.logs.at(-1)).toMatchObject({ level: "error", message: done.error });
    expect(done.attempts).toBe(1); // not retried: it would fail the same way

    // A calibration set that cannot be read fails the build at once, with the reason.
    const damaged = await storeCalibration(modelVersionId, new TextEncoder().encode("not a zip"));
    const second = await queueRawBuild(modelVersionId, {
      precision: "int8",
      calibrationSetId: damaged.id,
      calibrationStorageKey: damaged.storageKey,
      calibrationSha256: damaged.sha256,
      calibrationMethod: "entropy",
    });
    const failed = await waitFor(
      () => buildOf(second),
      (b) => b.status === "failed",
      "the build with a damaged calibration set",
    );
    expect(failed.error).toBe(
      "The calibration set could not be read: not a .npz file: 9 bytes is too short for a zip archive. Upload a new .npz.",
    );
    expect(failed.attempts).toBe(1);
  });

  it("cancels a running build, and builds it when retried", async () => {
    startWorker("builder-3");
    const { modelVersionId } = await upload("deep", deepModel(30, 256));
    const created = await api().builds.create({ modelVersionId, target: "cpu", profiles: SLOW_PROFILE });
    await waitFor(
      () => buildOf(created.id),
      (b) => b.progress?.stage === "tune",
      "the tune stage",
      60_000,
    );
    expect(await api().builds.cancel({ id: created.id })).toEqual({ id: created.id, status: "canceled" });
    const canceled = await waitFor(
      () => buildOf(created.id),
      (b) => b.logs.some((l) => l.message === "Build canceled"),
      "the worker to stop building",
    );
    expect(canceled).toMatchObject({ status: "canceled", engineSizeBytes: null, downloadUrl: null });
    await expect(api().builds.cancel({ id: created.id })).rejects.toMatchObject({ code: "CONFLICT" });

    expect(await api().builds.retry({ id: created.id })).toEqual({ id: created.id, status: "queued" });
    const retried = await waitFor(
      () => buildOf(created.id),
      (b) => b.status === "succeeded" || b.status === "failed",
      "the retry",
    );
    expect(retried).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("retries a build on another worker when its worker dies mid-build", async () => {
    const doomed = startWorker("doomed");
    const { modelVersionId } = await upload("deep-2", deepModel(30, 256));
    // Another profile than the test above, so it is not served from cache.
    const profiles = [{ x: { min: [1, 256], opt: [8000, 256], max: [8000, 256] } }];
    const created = await api().builds.create({ modelVersionId, target: "cpu", profiles });
    await waitFor(
      () => buildOf(created.id),
      (b) => b.progress?.stage === "tune",
      "the tune stage",
      60_000,
    );
    doomed.kill("SIGKILL");
    await once(doomed, "exit");
    expect((await buildOf(created.id)).status).toBe("running");

    startWorker("survivor");
    const done = await waitFor(
      () => buildOf(created.id),
      (b) => b.status === "succeeded" || b.status === "failed",
      "the retried build",
    );
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
    const starts = done.logs.filter((l) => l.message.startsWith("Build started")).map((l) => l.message);
    expect(starts).toEqual([
      "Build started on worker doomed (attempt 1)",
      "Build started on worker survivor (attempt 2)",
    ]);
  });
});
