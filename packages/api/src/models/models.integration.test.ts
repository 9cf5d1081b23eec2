import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { denseModel, unsupportedOperatorModel } from "@kiln/builds/testing";
import { newId } from "@kiln/db";
import type { StorageProvider } from "@kiln/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type TestUser } from "../testing/harness.ts";
import { type UploadedModel, uploadModel } from "./upload-model.ts";

/** A request whose body arrives in chunks, as a browser upload does. */
function streamedRequest(url: string, bytes: Uint8Array, chunkSize = 1024, headers: Record<string, string> = {}) {
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
  return new Request(url, { method: "POST", body, headers, duplex: "half" } as RequestInit);
}

describe("model uploads and the models router", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const upload = (who: TestUser | null, orgId: string | undefined, query: string, bytes: Uint8Array, headers = {}) =>
    uploadModel(
      streamedRequest(`http://kiln.test/api/models/upload?${query}`, bytes, 1024, headers),
      h.contextFor(who, orgId),
    );
  const storedFiles = async (orgId: string) =>
    readdir(join(h.artifactDir, "models", orgId)).catch(() => [] as string[]);

  it("streams an upload to storage with its sha256 and signature, as versions of one model", async () => {
    const { org, member, as } = await h.createOrg("Uploads");
    const bytes = denseModel();
    const first = await upload(member, org.id, "name=dense&filename=dense.onnx", bytes);
    expect(first.status).toBe(201);
    const body = (await first.json()) as UploadedModel;
    expect(body).toMatchObject({ version: 1, sizeBytes: bytes.length });
    expect(body.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(body.signature).toMatchObject({
      inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }],
      outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
      operators: ["Add", "MatMul", "Relu"],
      unsupported: [],
      parameterCount: 15,
    });

    const second = (await (
      await upload(member, org.id, "name=dense&filename=dense-v2.onnx", denseModel(2))
    ).json()) as UploadedModel;
    expect(second).toMatchObject({ modelId: body.modelId, version: 2 });

    const models = await as(member).models.list();
    expect(models).toEqual([
      expect.objectContaining({
        id: body.modelId,
        name: "dense",
        versionCount: 2,
        latestVersion: expect.objectContaining({ version: 2 }),
      }),
    ]);
    const model = await as(member).models.get({ id: body.modelId });
    expect(model.versions.map((v) => [v.version, v.opset, v.unsupportedCount])).toEqual([
      [2, 17, 0],
      [1, 17, 0],
    ]);
    expect(await as(member).models.version({ id: second.modelVersionId })).toMatchObject({
      modelName: "dense",
      version: 2,
      sizeBytes: BigInt(bytes.length),
    });
    expect((await as(member).models.versions({ modelId: body.modelId })).length).toBe(2);
    expect(await storedFiles(org.id)).toHaveLength(2);
  });

  it("shows unsupported operators at upload, before any build", async () => {
    const { org, member, as } = await h.createOrg("Unsupported");
    const response = await upload(member, org.id, "name=odd", unsupportedOperatorModel());
    expect(response.status).toBe(201);
    const body = (await response.json()) as UploadedModel;
    expect(body.signature.unsupported).toEqual([
      "unsupported operator com.example.FancyUnknownOp (opset 1) at node 'mystery'",
    ]);
    expect((await as(member).models.version({ id: body.modelVersionId })).unsupportedCount).toBe(1);
    await expect(
      as(member).builds.create({ modelVersionId: body.modelVersionId, target: "cpu" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining(
        "operators Kiln cannot build yet: unsupported operator com.example.FancyUnknownOp",
      ),
    });
  });

  it("rejects a corrupt upload with the reason and leaves nothing behind", async () => {
    const { org, member } = await h.createOrg("Corrupt");
    const garbage = new Uint8Array(randomBytes(4096));
    const response = await upload(member, org.id, "name=broken", garbage);
    expect(response.status).toBe(422);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("UNPROCESSABLE_CONTENT");
    expect(error.message).toMatch(/^This file is not a valid ONNX model: /);
    expect(await storedFiles(org.id)).toEqual([]);
    expect(await h.prisma.model.count({ where: { orgId: org.id } })).toBe(0);
    expect(await h.prisma.modelVersion.count({ where: { orgId: org.id } })).toBe(0);

    const truncated = denseModel().slice(0, 60);
    expect((await upload(member, org.id, "name=broken", truncated)).status).toBe(422);
    expect(await storedFiles(org.id)).toEqual([]);
  });

  it("enforces the plan's size limit, and checks names, session and organization", async () => {
    const { org, member } = await h.createOrg("Limits");
    const declaredHuge = await upload(member, org.id, "name=big", denseModel(), {
      "content-length": String(300 * 1024 * 1024),
    });
    expect(declaredHuge.status).toBe(413);
    expect(((await declaredHuge.json()) as { error: { message: string } }).error.message).toBe(
      "The file is larger than the 256 MB model size limit of the Free plan",
    );
    expect((await upload(member, org.id, "name=bad name!", denseModel())).status).toBe(400);
    expect((await upload(member, org.id, "name=ok&filename=model.pt", denseModel())).status).toBe(400);
    expect((await upload(null, org.id, "name=ok", denseModel())).status).toBe(401);
    const other = await h.createOrg("LimitsOther");
    expect((await upload(member, other.org.id, "name=ok", denseModel())).status).toBe(404);
    expect(await storedFiles(org.id)).toEqual([]);
  });

  it("cuts off an undeclared oversized upload while streaming, before the native reader reads it", async () => {
    const { org, member } = await h.createOrg("Streamed");
    // 257 MiB produced a chunk at a time (never held whole) with no length declared: the store stops
    // past the Free plan's 256 MiB; the file is never read back into memory for inspection.
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
    const request = new Request("http://kiln.test/api/models/upload?name=huge", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    const response = await uploadModel(request, { ...h.contextFor(member, org.id), storage });
    expect(response.status).toBe(413);
    expect(reads).toEqual([]);
    expect(await storedFiles(org.id)).toEqual([]);
    expect(await h.prisma.modelVersion.count({ where: { orgId: org.id } })).toBe(0);
  });

  it("answers NOT_FOUND for another organization's models, and needs admin to delete", async () => {
    const a = await h.createOrg("ModelsA");
    const b = await h.createOrg("ModelsB");
    const uploaded = (await (await upload(b.member, b.org.id, "name=secret", denseModel())).json()) as UploadedModel;
    const asA = a.as(a.owner);
    await expect(asA.models.get({ id: uploaded.modelId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(asA.models.versions({ modelId: uploaded.modelId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(asA.models.version({ id: uploaded.modelVersionId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(asA.models.delete({ id: uploaded.modelId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await asA.models.list()).toEqual([]);

    await expect(b.as(b.member).models.delete({ id: uploaded.modelId })).rejects.toMatchObject({ code: "FORBIDDEN" });

    // A model whose engine serves a deployment stays until the deployment goes.
    const build = await h.prisma.build.create({
      data: {
        id: newId("bld"),
        orgId: b.org.id,
        modelVersionId: uploaded.modelVersionId,
        target: "cpu",
        profiles: [],
        cacheKey: "k",
        builderVersion: "t",
      },
    });
    const deployment = await h.prisma.deployment.create({
      data: { id: newId("dep"), orgId: b.org.id, name: "prod", buildId: build.id },
    });
    await expect(b.as(b.admin).models.delete({ id: uploaded.modelId })).rejects.toMatchObject({
      code: "CONFLICT",
      message: "secret is deployed (1 deployment(s)): delete those first",
    });
    await h.prisma.deployment.delete({ where: { id: deployment.id } });
    expect(await b.as(b.admin).models.delete({ id: uploaded.modelId })).toEqual({ id: uploaded.modelId });
    expect(await storedFiles(b.org.id)).toEqual([]);
    const audit = await b.as(b.admin).auditLog.list({});
    expect(audit.items.map((i) => i.action)).toEqual(expect.arrayContaining(["models.delete", "models.upload"]));
  });
});
