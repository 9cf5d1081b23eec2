import { newId, type Prisma } from "@kiln/db";
import { KilnEngineError, type ModelSignature, parseNpz, type Tensor } from "@kiln/engine";
import { KilnError, notFound } from "@kiln/errors";
import { formatBytes, SizeLimitExceededError } from "@kiln/storage";
import { recordAudit } from "../audit.ts";
import type { Context } from "../context.ts";
import { planOf } from "../models/model-limits.ts";
import { errorResponse, requireOrgAccess } from "../org-access.ts";
import { type CalibrationArray, checkCalibration } from "./check-calibration.ts";

export type UploadedCalibration = {
  id: string;
  modelVersionId: string;
  filename: string;
  sha256: string;
  sizeBytes: number;
  sampleCount: number;
  arrays: CalibrationArray[];
};

/** Where a calibration set's .npz lives in the artifact store. */
export const calibrationStorageKey = (orgId: string, calibrationSetId: string) =>
  `calibration/${orgId}/${calibrationSetId}.npz`;

/**
 * POST handler for INT8 calibration sets (apps/web mounts it at /api/calibration/upload). The body
 * is the .npz itself; `?modelVersionId=` names the version it calibrates and `?filename=` the file.
 * Like a model upload, the body is streamed to storage under the plan's size limit (never held
 * whole while it arrives) with its SHA-256; only a file within the limit is then read back and
 * parsed (the arrays must be in memory to be checked), with its uncompressed size capped by the
 * same limit. The arrays must fit the version's inputs; a refused file leaves nothing behind.
 */
export async function uploadCalibration(request: Request, ctx: Context): Promise<Response> {
  try {
    return Response.json(await receiveCalibration(request, ctx), { status: 201 });
  } catch (error) {
    return errorResponse(error);
  }
}

async function receiveCalibration(request: Request, ctx: Context): Promise<UploadedCalibration> {
  const access = await requireOrgAccess(ctx, "member");
  const params = new URL(request.url).searchParams;
  const modelVersionId = params.get("modelVersionId") ?? "";
  const filename = (params.get("filename") ?? "calibration.npz").trim();
  const version = await ctx.prisma.modelVersion.findFirst({
    where: { id: modelVersionId, orgId: access.org.id },
    select: { id: true, signature: true },
  });
  if (!version) throw notFound("Model version", modelVersionId);
  if (!/\.npz$/i.test(filename) || filename.length > 255) {
    throw new KilnError(
      "BAD_REQUEST",
      `"${filename}" is not an .npz file: save the calibration arrays with numpy.savez (one array per model input)`,
    );
  }
  if (!request.body) throw new KilnError("BAD_REQUEST", "The upload is empty: send the .npz file as the request body");

  const plan = await planOf(ctx.prisma, access.org.id);
  const maxBytes = plan.limits.maxModelBytes;
  const tooLarge = () =>
    new KilnError(
      "PAYLOAD_TOO_LARGE",
      `The calibration set is larger than the ${formatBytes(maxBytes)} limit of the ${plan.name} plan: use fewer samples`,
    );
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge();

  const id = newId("cal");
  const storageKey = calibrationStorageKey(access.org.id, id);
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

  try {
    if (stored.sizeBytes === 0) throw new KilnError("BAD_REQUEST", "The upload is empty: choose a non-empty .npz file");
    // Within the limit: reading it back whole is bounded by the plan, and so is what it inflates to.
    const arrays = readArrays(await ctx.storage.getBytes(storageKey), maxBytes);
    const signature = version.signature as unknown as ModelSignature;
    const summary = checkCalibration(arrays, signature.inputs);
    await ctx.prisma.calibrationSet.create({
      data: {
        id,
        orgId: access.org.id,
        modelVersionId: version.id,
        filename,
        sha256: stored.sha256,
        sizeBytes: BigInt(stored.sizeBytes),
        storageKey,
        sampleCount: summary.sampleCount,
        arrays: summary.arrays as unknown as Prisma.InputJsonValue,
        uploadedById: access.user.id,
      },
    });
    await recordAudit(ctx.prisma, {
      orgId: access.org.id,
      actorType: "user",
      actorId: access.user.id,
      action: "calibration.upload",
      targetType: "calibrationSet",
      targetId: id,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      metadata: { modelVersionId: version.id, filename, sha256: stored.sha256, sizeBytes: stored.sizeBytes },
    });
    return { id, modelVersionId: version.id, filename, ...stored, ...summary };
  } catch (error) {
    await ctx.storage.delete(storageKey);
    throw error;
  }
}

function readArrays(bytes: Uint8Array, maxInflatedBytes: number): Record<string, Tensor> {
  try {
    return parseNpz(bytes, { maxInflatedBytes });
  } catch (error) {
    if (error instanceof KilnEngineError) {
      throw new KilnError(
        "UNPROCESSABLE_CONTENT",
        `This file is not a readable .npz calibration set: ${error.message}`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}
