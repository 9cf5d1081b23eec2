import { buildCacheKey } from "@kiln/builds";
import { type BuildPrecision, type CalibrationMethod, newId, type Prisma } from "@kiln/db";
import { version as engineVersion, type ModelSignature, type Profile } from "@kiln/engine";
import { KilnError, notFound } from "@kiln/errors";
import type { Context } from "../context.ts";
import { BUILD_TARGET_PATTERN, precisionsOf, registeredBuildTargets } from "./build-targets.ts";

export type CalibrationChoice = {
  /** A calibration set of the same model version (calibration.list). */
  setId: string;
  method: CalibrationMethod;
  /** Percentile of |activation| the percentile method keeps (default 99.99); only for that method. */
  percentile?: number;
};

export type CreateBuildInput = {
  orgId: string;
  modelVersionId: string;
  target: string;
  precision: BuildPrecision;
  profiles: Profile[];
  /** INT8 only. */
  calibration?: CalibrationChoice | null;
};

export const DEFAULT_CALIBRATION_PERCENTILE = 99.99;

/**
 * Creates a build, or answers from the cache: an identical build (same model bytes, options, target
 * and builder version) that succeeded yields a new build row sharing its engine, marked as served
 * from cache; one that is still queued or running is returned as it is instead of building twice.
 */
export async function createBuild(
  ctx: Pick<Context, "prisma" | "redis" | "redisKeyPrefix" | "buildQueues">,
  input: CreateBuildInput,
) {
  const version = await ctx.prisma.modelVersion.findFirst({
    where: { id: input.modelVersionId, orgId: input.orgId },
    select: { id: true, sha256: true, signature: true },
  });
  if (!version) throw notFound("Model version", input.modelVersionId);
  if (!BUILD_TARGET_PATTERN.test(input.target)) {
    throw new KilnError("BAD_REQUEST", `Unknown target "${input.target}": use cpu or a GPU class such as cuda-sm90`);
  }
  if (input.target !== "cpu") {
    const offered = await registeredBuildTargets(ctx.redis, ctx.redisKeyPrefix);
    if (!offered.some((t) => t.target === input.target && t.workers > 0)) {
      throw new KilnError(
        "BAD_REQUEST",
        `No worker offers ${input.target} right now: choose one of ${offered.map((t) => t.target).join(", ")}`,
      );
    }
  }
  const signature = version.signature as unknown as ModelSignature;
  if (signature.unsupported?.length) {
    throw new KilnError(
      "BAD_REQUEST",
      `This model uses operators Kiln cannot build yet: ${signature.unsupported.join("; ")}. ` +
        "Re-export the model without them (or with a newer opset) and upload it as a new version.",
    );
  }
  checkProfiles(input.profiles, signature);
  const calibration = await resolveCalibration(ctx, input, signature);

  const builderVersion = engineVersion();
  const cacheKey = buildCacheKey({
    modelSha256: version.sha256,
    target: input.target,
    precision: input.precision,
    profiles: input.profiles,
    calibrationSha256: calibration?.calibrationSha256,
    calibrationMethod: calibration?.calibrationMethod,
    calibrationPercentile: calibration?.calibrationPercentile ?? undefined,
    builderVersion,
  });
  const existing = await ctx.prisma.build.findFirst({
    where: { orgId: input.orgId, cacheKey, status: { in: ["queued", "running", "succeeded"] } },
    orderBy: { createdAt: "desc" },
  });
  if (existing && existing.status !== "succeeded") return { build: existing, cached: false };

  const base = {
    id: newId("bld"),
    orgId: input.orgId,
    modelVersionId: version.id,
    target: input.target,
    precision: input.precision,
    profiles: input.profiles as unknown as Prisma.InputJsonValue,
    cacheKey,
    builderVersion,
    ...calibration,
  };
  if (existing?.engineStorageKey) {
    const now = new Date();
    const build = await ctx.prisma.build.create({
      data: {
        ...base,
        status: "succeeded",
        engineStorageKey: existing.engineStorageKey,
        engineSizeBytes: existing.engineSizeBytes,
        deviceMemoryBytes: existing.deviceMemoryBytes,
        report: { ...(existing.report as Prisma.JsonObject), cachedFromBuildId: existing.id },
        startedAt: now,
        finishedAt: now,
      },
    });
    return { build, cached: true };
  }
  const build = await ctx.prisma.build.create({ data: base });
  await enqueueOrFail(ctx, build);
  return { build, cached: false };
}

/**
 * The calibration columns of an INT8 build: the set (of this org and this model version), its file,
 * sha256 and method. INT8 needs a target that offers it (GPU classes) and a calibration set, unless
 * the model carries its own QuantizeLinear/DequantizeLinear ranges; other precisions take none.
 */
async function resolveCalibration(
  ctx: Pick<Context, "prisma">,
  input: CreateBuildInput,
  signature: ModelSignature,
): Promise<{
  calibrationSetId: string;
  calibrationStorageKey: string;
  calibrationSha256: string;
  calibrationMethod: CalibrationMethod;
  calibrationPercentile: number | null;
} | null> {
  if (input.precision !== "int8") {
    if (input.calibration) {
      throw new KilnError("BAD_REQUEST", "Only INT8 builds use a calibration set: choose INT8 or leave it out");
    }
    return null;
  }
  if (!precisionsOf(input.target).includes("int8")) {
    throw new KilnError(
      "BAD_REQUEST",
      `INT8 needs a GPU target: ${input.target} builds FP32 engines. Choose a GPU class a worker offers, or FP32.`,
    );
  }
  if (!input.calibration) {
    const carriesRanges =
      signature.operators.includes("QuantizeLinear") && signature.operators.includes("DequantizeLinear");
    if (carriesRanges) return null;
    throw new KilnError(
      "BAD_REQUEST",
      "INT8 needs a calibration set: upload an .npz with representative inputs (one array per model input)",
    );
  }
  const { setId, method } = input.calibration;
  if (method !== "percentile" && input.calibration.percentile !== undefined) {
    throw new KilnError("BAD_REQUEST", `A percentile applies only to the percentile method, not ${method}`);
  }
  const set = await ctx.prisma.calibrationSet.findFirst({
    where: { id: setId, orgId: input.orgId },
    select: { id: true, modelVersionId: true, storageKey: true, sha256: true, filename: true },
  });
  if (!set) throw notFound("Calibration set", setId);
  if (set.modelVersionId !== input.modelVersionId) {
    throw new KilnError(
      "BAD_REQUEST",
      `${set.filename} was uploaded for another model version; upload a calibration set for this one`,
    );
  }
  return {
    calibrationSetId: set.id,
    calibrationStorageKey: set.storageKey,
    calibrationSha256: set.sha256,
    calibrationMethod: method,
    calibrationPercentile:
      method === "percentile" ? (input.calibration.percentile ?? DEFAULT_CALIBRATION_PERCENTILE) : null,
  };
}

/** Profiles name dynamic inputs of the model with min <= opt <= max of the input's rank. */
function checkProfiles(profiles: Profile[], signature: ModelSignature) {
  const inputs = new Map(signature.inputs.map((i) => [i.name, i]));
  profiles.forEach((profile, index) => {
    for (const [name, range] of Object.entries(profile)) {
      const where = `Profile ${index + 1}, input "${name}"`;
      const info = inputs.get(name);
      if (!info) throw new KilnError("BAD_REQUEST", `${where}: the model has no such input`);
      const rank = info.shape?.length;
      for (const dims of [range.min, range.opt, range.max]) {
        if (rank !== undefined && dims.length !== rank) {
          throw new KilnError("BAD_REQUEST", `${where}: expected ${rank} dimensions, got ${dims.length}`);
        }
      }
      range.min.forEach((min, d) => {
        const opt = range.opt[d] ?? 0;
        const max = range.max[d] ?? 0;
        if (!(min >= 1 && min <= opt && opt <= max)) {
          throw new KilnError(
            "BAD_REQUEST",
            `${where}, dimension ${d}: need 1 <= min <= opt <= max (got ${min}, ${opt}, ${max})`,
          );
        }
        const fixed = info.shape?.[d];
        if (typeof fixed === "number" && fixed > 0 && (min !== fixed || max !== fixed)) {
          throw new KilnError("BAD_REQUEST", `${where}, dimension ${d} is fixed at ${fixed} by the model`);
        }
      });
    }
  });
}

/**
 * Queues a build whose row says "queued". If the queue cannot take it (Redis down), the row says so
 * instead of waiting forever for a job that does not exist.
 */
export async function enqueueOrFail(
  ctx: Pick<Context, "prisma" | "buildQueues">,
  build: { id: string; orgId: string; target: string },
): Promise<void> {
  try {
    await ctx.buildQueues.enqueue(build);
  } catch (error) {
    await ctx.prisma.build.updateMany({
      where: { id: build.id, orgId: build.orgId, status: "queued" },
      data: {
        status: "failed",
        finishedAt: new Date(),
        error: "Kiln could not queue this build (the job queue did not answer). Retry it in a moment.",
      },
    });
    throw error;
  }
}
