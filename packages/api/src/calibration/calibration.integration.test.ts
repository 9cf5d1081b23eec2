import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { buildCacheKey } from "@kiln/builds";
import { denseCalibration, denseModel, npzBytes } from "@kiln/builds/testing";
import type { StorageProvider } from "@kiln/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UploadedModel } from "../models/upload-model.ts";
import { uploadModel } from "../models/upload-model.ts";
import { createHarness, type Harness, type TestUser } from "../testing/harness.ts";
import { checkCalibration } from "./check-calibration.ts";
import { type UploadedCalibration, uploadCalibration } from "./upload-calibration.ts";

/** A request whose body arrives in chunks, as a browser upload does. */
function streamedRequest(url: string, bytes: Uint8Array, headers: Record<string, string> = {}) {
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + 1024));
      offset += 1024;
    },
  });
  return new Request(url, { method: "POST", body, headers, duplex: "half" } as RequestInit);
}

type ErrorBody = { error: { code: string; message: string } };

describe("INT8 calibration sets: upload, router and INT8 builds", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
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
    const { modelVersionId } = (await response.json()) as UploadedModel;
    return { ...org, modelVersionId, api: org.as(org.member) };
  }
  const upload = (who: TestUser | null, orgId: string, query: string, bytes: Uint8Array, headers = {}) =>
    uploadCalibration(
      streamedRequest(`http://kiln.test/api/calibration/upload?${query}`, bytes, headers),
      h.contextFor(who, orgId),
    );
  const storedSets = async (orgId: string) =>
    readdir(join(h.artifactDir, "calibration", orgId)).catch(() => [] as string[]);
  const uploadSet = async (org: Awaited<ReturnType<typeof setup>>, bytes = denseCalibration()) => {
    const response = await upload(
      org.member,
      org.org.id,
      `modelVersionId=${org.modelVersionId}&filename=calib.npz`,
      bytes,
    );
    expect(response.status).toBe(201);
    return (await response.json()) as UploadedCalibration;
  };
  /** What a GPU worker's heartbeat writes, so GPU targets (and INT8) are offered. */
  const registerGpuWorker = () =>
    h.redis.set(
      `${h.redisKeyPrefix}worker:gpu-cal`,
      JSON.stringify({ id: "gpu-cal", target: "cuda-sm90" }),
      "PX",
      60_000,
    );

  it("streams a set to storage, checks it against the model's inputs and lists it", async () => {
    const org = await setup("Calib");
    const bytes = denseCalibration(16, { compress: true });
    const set = await uploadSet(org, bytes);
    expect(set).toEqual({
      id: expect.stringMatching(/^cal_/),
      modelVersionId: org.modelVersionId,
      filename: "calib.npz",
      sha256: createHash("sha256").update(bytes).digest("hex"),
      sizeBytes: bytes.length,
      sampleCount: 16,
      arrays: [{ name: "x", dtype: "float32", shape: [16, 4] }],
    });
    expect(await storedSets(org.org.id)).toEqual([`${set.id}.npz`]);
    const listed = await org.api.calibration.list({ modelVersionId: org.modelVersionId });
    expect(listed).toEqual([
      expect.objectContaining({ id: set.id, filename: "calib.npz", sampleCount: 16, buildCount: 0 }),
    ]);
    expect(await org.api.calibration.get({ id: set.id })).toMatchObject({
      id: set.id,
      sizeBytes: BigInt(bytes.length),
    });
    const audit = await org.as(org.admin).auditLog.list({});
    expect(audit.items.map((i) => i.action)).toContain("calibration.upload");
  });

  it("refuses sets that do not fit the model, saying what to fix, and keeps nothing of them", async () => {
    const org = await setup("CalibBad");
    const query = `modelVersionId=${org.modelVersionId}&filename=calib.npz`;
    const refusal = async (bytes: Uint8Array) => {
      const response = await upload(org.member, org.org.id, query, bytes);
      expect(response.status).toBe(422);
      return ((await response.json()) as ErrorBody).error.message;
    };
    expect(await refusal(new TextEncoder().encode("definitely not a zip archive"))).toBe(
      "This file is not a readable .npz calibration set: not a .npz file: no zip end-of-central-directory record (is it a zip archive saved by np.savez?)",
    );
    expect(
      await refusal(
        npzBytes({
          x: { dtype: "float64", shape: [2, 4], data: new Float64Array(8) },
        }),
      ),
    ).toBe(
      "This file is not a readable .npz calibration set: entry 'x.npy': dtype float64 is not supported (use one of float32, float16, int64, int32, uint8, int8, bool)",
    );
    expect(
      await refusal(
        npzBytes({
          x: { dtype: "int32", shape: [2, 5], data: new Int32Array(10) },
          extra: { dtype: "float32", shape: [3], data: new Float32Array(3) },
        }),
      ),
    ).toBe(
      'This calibration set does not fit the model: Array "x" is int32, but the input takes float32. ' +
        'Array "x" has shape (2, 5), but input "x" is (batch, 4): dim 1 must be 4. ' +
        'Array "extra" is not an input of the model (its inputs are "x").',
    );
    expect(await refusal(npzBytes({ y: { dtype: "float32", shape: [2, 4], data: new Float32Array(8) } }))).toBe(
      'This calibration set does not fit the model: There is no array named "x" for the model input of that name. ' +
        'Array "y" is not an input of the model (its inputs are "x").',
    );
    expect(await refusal(npzBytes({ x: { dtype: "float32", shape: [4], data: new Float32Array(4) } }))).toBe(
      'This calibration set does not fit the model: Array "x" has shape (4,), but input "x" is (batch, 4): the array needs the input\'s 2 dims, samples along the first.',
    );
    expect(await refusal(npzBytes({ x: { dtype: "float32", shape: [0, 4], data: new Float32Array(0) } }))).toBe(
      'This calibration set does not fit the model: Array "x" has shape (0, 4): it holds no samples (its first dim is 0).',
    );
    expect(await storedSets(org.org.id)).toEqual([]);
    expect(await h.prisma.calibrationSet.count({ where: { orgId: org.org.id } })).toBe(0);
  });

  it("enforces the plan's size limit while streaming, before the file is ever read back", async () => {
    const org = await setup("CalibLimit");
    const query = `modelVersionId=${org.modelVersionId}&filename=calib.npz`;
    const declared = await upload(org.member, org.org.id, query, denseCalibration(), {
      "content-length": String(300 * 1024 * 1024),
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as ErrorBody).error.message).toBe(
      "The calibration set is larger than the 256 MB limit of the Free plan: use fewer samples",
    );
    // No length declared: 257 MiB of zeros produced chunk by chunk, never held whole. The store cuts
    // the stream off past 256 MiB; the file is never read back (getBytes) for parsing.
    const reads: string[] = [];
    const storage: StorageProvider = {
      ...h.deps.storage,
      getBytes: (key) => {
        reads.push(key);
        return h.deps.storage.getBytes(key);
      },
    };
    const chunk = new Uint8Array(1 << 20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 257) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const request = new Request(`http://kiln.test/api/calibration/upload?${query}`, {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    const streamed = await uploadCalibration(request, { ...h.contextFor(org.member, org.org.id), storage });
    expect(streamed.status).toBe(413);
    expect(reads).toEqual([]);
    expect(await storedSets(org.org.id)).toEqual([]);
  });

  it("checks the session, the organization, the version and the file name", async () => {
    const org = await setup("CalibAccess");
    const other = await setup("CalibAccessOther");
    const ok = `modelVersionId=${org.modelVersionId}&filename=calib.npz`;
    expect((await upload(null, org.org.id, ok, denseCalibration())).status).toBe(401);
    // Not a member of the organization, or another organization's version: 404 either way.
    expect((await upload(org.member, other.org.id, ok, denseCalibration())).status).toBe(404);
    const foreignVersion = await upload(
      org.member,
      org.org.id,
      `modelVersionId=${other.modelVersionId}&filename=calib.npz`,
      denseCalibration(),
    );
    expect(foreignVersion.status).toBe(404);
    expect(((await foreignVersion.json()) as ErrorBody).error.code).toBe("NOT_FOUND");
    const wrongName = await upload(
      org.member,
      org.org.id,
      `modelVersionId=${org.modelVersionId}&filename=calib.pkl`,
      denseCalibration(),
    );
    expect(wrongName.status).toBe(400);
    expect(await storedSets(org.org.id)).toEqual([]);
  });

  it("answers NOT_FOUND for another organization's sets and versions, and needs admin to delete", async () => {
    const a = await setup("CalibA");
    const b = await setup("CalibB");
    const set = await uploadSet(b);
    await registerGpuWorker();
    for (const call of [
      () => a.api.calibration.get({ id: set.id }),
      () => a.as(a.owner).calibration.delete({ id: set.id }),
      () => a.api.calibration.list({ modelVersionId: b.modelVersionId }),
      () =>
        a.api.builds.create({
          modelVersionId: a.modelVersionId,
          target: "cuda-sm90",
          precision: "int8",
          calibration: { setId: set.id, method: "entropy" },
        }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: "NOT_FOUND" });
    }
    await expect(b.api.calibration.delete({ id: set.id })).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await b.as(b.admin).calibration.delete({ id: set.id })).toEqual({ id: set.id });
    expect(await storedSets(b.org.id)).toEqual([]);
    await expect(b.api.calibration.get({ id: set.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("builds INT8 only on GPU targets, with a set of the version, recorded on the build and in its cache key", async () => {
    const org = await setup("Int8");
    const set = await uploadSet(org);
    const int8 = (calibration?: { setId: string; method: "entropy" | "percentile" | "minmax"; percentile?: number }) =>
      org.api.builds.create({
        modelVersionId: org.modelVersionId,
        target: "cuda-sm90",
        precision: "int8",
        calibration,
      });

    await expect(
      org.api.builds.create({
        modelVersionId: org.modelVersionId,
        target: "cpu",
        precision: "int8",
        calibration: { setId: set.id, method: "entropy" },
      }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "INT8 needs a GPU target: cpu builds FP32 engines. Choose a GPU class a worker offers, or FP32.",
    });
    await registerGpuWorker();
    expect((await org.api.builds.targets()).map((t) => [t.target, t.precisions])).toEqual([
      ["cpu", ["fp32"]],
      ["cuda-sm90", ["fp32", "fp16", "int8"]],
    ]);
    await expect(int8()).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "INT8 needs a calibration set: upload an .npz with representative inputs (one array per model input)",
    });
    await expect(
      org.api.builds.create({
        modelVersionId: org.modelVersionId,
        target: "cuda-sm90",
        precision: "fp16",
        calibration: { setId: set.id, method: "entropy" },
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^Only INT8 builds use/) });
    await expect(int8({ setId: set.id, method: "minmax", percentile: 99 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "A percentile applies only to the percentile method, not minmax",
    });
    await expect(int8({ setId: set.id, method: "percentile", percentile: 101 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });

    const entropy = await int8({ setId: set.id, method: "entropy" });
    expect(entropy).toMatchObject({ status: "queued", precision: "int8", target: "cuda-sm90" });
    const row = await h.prisma.build.findUniqueOrThrow({ where: { id: entropy.id } });
    expect(row).toMatchObject({
      calibrationSetId: set.id,
      calibrationStorageKey: `calibration/${org.org.id}/${set.id}.npz`,
      calibrationSha256: set.sha256,
      calibrationMethod: "entropy",
      calibrationPercentile: null,
    });
    const version = await h.prisma.modelVersion.findUniqueOrThrow({ where: { id: org.modelVersionId } });
    expect(row.cacheKey).toBe(
      buildCacheKey({
        modelSha256: version.sha256,
        target: "cuda-sm90",
        precision: "int8",
        profiles: [],
        calibrationSha256: set.sha256,
        calibrationMethod: "entropy",
        builderVersion: row.builderVersion,
      }),
    );
    // The same options while it is queued: that build. Another method or set: another build.
    expect((await int8({ setId: set.id, method: "entropy" })).id).toBe(entropy.id);
    const percentile = await int8({ setId: set.id, method: "percentile" });
    expect(percentile.id).not.toBe(entropy.id);
    expect(await org.api.builds.get({ id: percentile.id })).toMatchObject({
      calibration: {
        setId: set.id,
        filename: "calib.npz",
        sampleCount: 16,
        sha256: set.sha256,
        method: "percentile",
        percentile: 99.99,
      },
    });
    const other = await uploadSet(org, denseCalibration(8));
    const otherBuild = await int8({ setId: other.id, method: "entropy" });
    expect(otherBuild.id).not.toBe(entropy.id);
    expect((await org.api.calibration.list({ modelVersionId: org.modelVersionId })).map((s) => s.buildCount)).toEqual([
      1, 2,
    ]);

    // A set in use stays; one of another version of the same model is refused.
    await expect(org.as(org.admin).calibration.delete({ id: set.id })).rejects.toMatchObject({
      code: "CONFLICT",
      message: "calib.npz was used by 2 build(s); delete the model version to remove it with them",
    });
    const v2 = (await (
      await uploadModel(
        new Request("http://kiln.test/api/models/upload?name=int8", { method: "POST", body: denseModel(2) }),
        h.contextFor(org.member, org.org.id),
      )
    ).json()) as UploadedModel;
    await expect(
      org.api.builds.create({
        modelVersionId: v2.modelVersionId,
        target: "cuda-sm90",
        precision: "int8",
        calibration: { setId: set.id, method: "entropy" },
      }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "calib.npz was uploaded for another model version; upload a calibration set for this one",
    });

    // Deleting the model removes its versions, builds and sets together.
    await org.as(org.admin).models.delete({ id: v2.modelId });
    expect(await h.prisma.calibrationSet.count({ where: { orgId: org.org.id } })).toBe(0);
  });
});

describe("checkCalibration", () => {
  const inputs = [
    { name: "ids", dtype: "int64" as const, shape: ["batch", "seq"] },
    { name: "mask", dtype: "int64" as const, shape: ["batch", "seq"] },
  ];
  const tensor = (n: number, seq: number) => ({
    dtype: "int64" as const,
    shape: [n, seq],
    data: new BigInt64Array(n * seq),
  });

  it("accepts any size for symbolic dims, and needs one sample count", () => {
    expect(checkCalibration({ ids: tensor(3, 7), mask: tensor(3, 7) }, inputs)).toEqual({
      sampleCount: 3,
      arrays: [
        { name: "ids", dtype: "int64", shape: [3, 7] },
        { name: "mask", dtype: "int64", shape: [3, 7] },
      ],
    });
    expect(() => checkCalibration({ ids: tensor(3, 7), mask: tensor(2, 7) }, inputs)).toThrow(
      'Every array needs the same number of samples along its first dim (found "ids" 3; "mask" 2).',
    );
  });
});
