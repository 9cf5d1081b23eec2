import { newId, type Prisma } from "@kiln/db";
import { inspect, KilnEngineError, type ModelSignature } from "@kiln/engine";
import { KilnError } from "@kiln/errors";
import { formatBytes, SizeLimitExceededError } from "@kiln/storage";
import { recordAudit } from "../audit.ts";
import type { Context } from "../context.ts";
import { errorResponse, requireOrgAccess } from "../org-access.ts";
import { planOf } from "./model-limits.ts";

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export type UploadedModel = {
  modelId: string;
  modelVersionId: string;
  version: number;
  sha256: string;
  sizeBytes: number;
  signature: ModelSignature;
};

/** Where a version's ONNX file lives in the artifact store. */
export const modelStorageKey = (orgId: string, modelVersionId: string) => `models/${orgId}/${modelVersionId}.onnx`;

/**
 * POST handler for model uploads (apps/web mounts it at /api/models/upload). The body is the .onnx
 * file itself; `?name=` names the model (a new one, or a new version of an existing one with that
 * name) and `?filename=` the file. The body is streamed to storage under the plan's size limit while
 * its SHA-256 is computed; then the native reader validates it and extracts its signature. A file
 * that is too large or not a valid model is refused with the reason and leaves nothing behind.
 */
export async function uploadModel(request: Request, ctx: Context): Promise<Response> {
  try {
    const uploaded = await receiveModel(request, ctx);
    return Response.json(uploaded, { status: 201 });
  } catch (error) {
    return errorResponse(error);
  }
}

async function receiveModel(request: Request, ctx: Context): Promise<UploadedModel> {
  const access = await requireOrgAccess(ctx, "member");
  const params = new URL(request.url).searchParams;
  const name = (params.get("name") ?? "").trim();
  const filename = (params.get("filename") ?? `${name}.onnx`).trim();
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new KilnError(
      "BAD_REQUEST",
      "Model name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
  }
  if (!/\.onnx$/i.test(filename) || filename.length > 255) {
    throw new KilnError("BAD_REQUEST", `"${filename}" is not an .onnx file: export the model to ONNX first`);
  }
  if (!request.body) throw new KilnError("BAD_REQUEST", "The upload is empty: send the .onnx file as the request body");

  const plan = await planOf(ctx.prisma, access.org.id);
  const maxBytes = plan.limits.maxModelBytes;
  const tooLarge = () =>
    new KilnError(
      "PAYLOAD_TOO_LARGE",
      `The file is larger than the ${formatBytes(maxBytes)} model size limit of the ${plan.name} plan`,
    );
  // Refuse early when the client says how big it is; the stream is still counted either way.
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge();

  const modelVersionId = newId("mver");
  const storageKey = modelStorageKey(access.org.id, modelVersionId);
  let stored: { sizeBytes: number; sha256: string };
  try {
    const { sizeBytes, sha256 } = await ctx.storage.putStream(storageKey, request.body, {
      maxBytes,
      contentType: "application/octet-stream",
    });
    stored = { sizeBytes, sha256 };
  } catch (error) {
    if (error instanceof SizeLimitExceededError) throw tooLarge();
    throw error;
  }

  let created: { modelId: string; version: number; signature: ModelSignature };
  try {
    if (stored.sizeBytes === 0)
      throw new KilnError("BAD_REQUEST", "The upload is empty: choose a non-empty .onnx file");
    const signature = await readSignature(await ctx.storage.getBytes(storageKey));
    const row = await createVersionRow(ctx, {
      orgId: access.org.id,
      name,
      modelVersionId,
      storageKey,
      filename,
      signature,
      ...stored,
    });
    created = { ...row, signature };
  } catch (error) {
    // Nothing of a refused upload stays: the rows were not written, so the file goes too.
    await ctx.storage.delete(storageKey);
    throw error;
  }
  await recordAudit(ctx.prisma, {
    orgId: access.org.id,
    actorType: "user",
    actorId: access.user.id,
    action: "models.upload",
    targetType: "modelVersion",
    targetId: modelVersionId,
    ip: ctx.ip,
    userAgent: ctx.userAgent,
    metadata: { name, version: created.version, sha256: stored.sha256, sizeBytes: stored.sizeBytes },
  });
  return {
    modelId: created.modelId,
    modelVersionId,
    version: created.version,
    ...stored,
    signature: created.signature,
  };
}

async function readSignature(bytes: Uint8Array): Promise<ModelSignature> {
  try {
    return await inspect(bytes);
  } catch (error) {
    if (error instanceof KilnEngineError && (error.code === "INVALID_MODEL" || error.code === "INVALID_ARGUMENT")) {
      throw new KilnError("UNPROCESSABLE_CONTENT", `This file is not a valid ONNX model: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}

type NewVersion = {
  orgId: string;
  name: string;
  modelVersionId: string;
  storageKey: string;
  filename: string;
  signature: ModelSignature;
  sizeBytes: number;
  sha256: string;
};

/** The model (created on first upload of its name) and its next version number, in one transaction. */
async function createVersionRow(ctx: Context, v: NewVersion): Promise<{ modelId: string; version: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.prisma.$transaction(async (tx) => {
        const model = await tx.model.upsert({
          where: { orgId_name: { orgId: v.orgId, name: v.name } },
          create: { id: newId("mdl"), orgId: v.orgId, name: v.name },
          update: { updatedAt: new Date() },
          select: { id: true },
        });
        const latest = await tx.modelVersion.findFirst({
          where: { orgId: v.orgId, modelId: model.id },
          orderBy: { version: "desc" },
          select: { version: true },
        });
        const version = (latest?.version ?? 0) + 1;
        await tx.modelVersion.create({
          data: {
            id: v.modelVersionId,
            orgId: v.orgId,
            modelId: model.id,
            version,
            sha256: v.sha256,
            sizeBytes: BigInt(v.sizeBytes),
            storageKey: v.storageKey,
            filename: v.filename,
            opset: v.signature.opsets[""] ?? v.signature.opsets["ai.onnx"] ?? 0,
            producer: v.signature.producer || null,
            signature: v.signature as unknown as Prisma.InputJsonValue,
          },
        });
        return { modelId: model.id, version };
      });
    } catch (error) {
      // Two uploads of the same name at once race for a version number (or the model row): retry.
      if ((error as { code?: string }).code !== "P2002" || attempt >= 3) throw error;
    }
  }
}
