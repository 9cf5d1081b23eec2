import { BuildPrecision, CalibrationMethod, Prisma, type PrismaClient } from "@kiln/db";
import type { BuildReport } from "@kiln/engine";
import { KilnError, notFound } from "@kiln/errors";
import { z } from "zod";
import { BUILD_TARGET_PATTERN, registeredBuildTargets } from "../builds/build-targets.ts";
import { createBuild, enqueueOrFail } from "../builds/create-build.ts";
import { engineDownloadPath } from "../builds/engine-download.ts";
import { orgProcedure, router } from "../trpc.ts";

const ZDims = z.array(z.number().int().min(1)).max(8);
export const ZCreateBuild = z.object({
  modelVersionId: z.string().min(1),
  target: z.string().regex(BUILD_TARGET_PATTERN, 'Use "cpu" or a GPU class such as "cuda-sm90"'),
  precision: z.enum(BuildPrecision).default("fp32"),
  profiles: z
    .array(z.record(z.string(), z.object({ min: ZDims, opt: ZDims, max: ZDims })))
    .max(8)
    .default([]),
  /** INT8: a calibration set of this version (calibration.list) and how ranges are computed. */
  calibration: z
    .object({
      setId: z.string().min(1),
      method: z.enum(CalibrationMethod).default("entropy"),
      percentile: z
        .number()
        .min(50, "The percentile must be between 50 and 100")
        .max(100, "The percentile must be between 50 and 100")
        .optional(),
    })
    .nullish(),
});
export const ZBuildId = z.object({ id: z.string().min(1) });
export const ZBuildList = z.object({
  modelId: z.string().optional(),
  modelVersionId: z.string().optional(),
  limit: z.number().int().min(1).max(100).default(50),
  cursor: z.string().nullish(),
});
export const ZBuildEvents = z.object({ id: z.string().min(1), after: z.string().default("0") });

const LIST_FIELDS = {
  id: true,
  modelVersionId: true,
  target: true,
  precision: true,
  status: true,
  engineSizeBytes: true,
  deviceMemoryBytes: true,
  error: true,
  attempts: true,
  createdAt: true,
  startedAt: true,
  finishedAt: true,
  modelVersion: { select: { version: true, model: { select: { id: true, name: true } } } },
} as const;

type ListRow = { modelVersion: { version: number; model: { id: string; name: string } } };
const flatten = <T extends ListRow>({ modelVersion, ...row }: T) => ({
  ...row,
  modelId: modelVersion.model.id,
  modelName: modelVersion.model.name,
  modelVersion: modelVersion.version,
});

async function findBuild(ctx: { prisma: PrismaClient; org: { id: string } }, id: string) {
  const build = await ctx.prisma.build.findFirst({
    where: { id, orgId: ctx.org.id },
    select: {
      ...LIST_FIELDS,
      profiles: true,
      cacheKey: true,
      builderVersion: true,
      report: true,
      engineStorageKey: true,
      calibrationMethod: true,
      calibrationPercentile: true,
      calibrationSha256: true,
      calibrationSet: { select: { id: true, filename: true, sampleCount: true } },
    },
  });
  if (!build) throw notFound("Build", id);
  return build;
}

export const buildsRouter = router({
  /** The targets a build can ask for: cpu always, GPU classes while a registered worker offers them. */
  targets: orgProcedure.query(({ ctx }) => registeredBuildTargets(ctx.redis, ctx.redisKeyPrefix)),

  create: orgProcedure.input(ZCreateBuild).mutation(async ({ ctx, input }) => {
    const { build, cached } = await createBuild(ctx, { ...input, orgId: ctx.org.id });
    ctx.audit.target("build", build.id, {
      modelVersionId: input.modelVersionId,
      target: input.target,
      precision: input.precision,
      ...(input.calibration
        ? { calibrationSetId: input.calibration.setId, calibrationMethod: input.calibration.method }
        : {}),
      cached,
    });
    return { ...flatten(await findBuild(ctx, build.id)), cached };
  }),

  list: orgProcedure.input(ZBuildList).query(async ({ ctx, input }) => {
    const rows = await ctx.prisma.build.findMany({
      where: {
        orgId: ctx.org.id,
        ...(input.modelVersionId ? { modelVersionId: input.modelVersionId } : {}),
        ...(input.modelId ? { modelVersion: { modelId: input.modelId } } : {}),
        ...(input.cursor ? { id: { lt: input.cursor } } : {}),
      },
      orderBy: { id: "desc" },
      take: input.limit,
      select: LIST_FIELDS,
    });
    return rows.map(flatten);
  }),

  /** A build with its report, latest progress and log lines (the page polls this while it runs). */
  get: orgProcedure.input(ZBuildId).query(async ({ ctx, input }) => {
    const build = await findBuild(ctx, input.id);
    const events = await ctx.buildQueues.events(build.id);
    const progress = events.filter((e) => e.type === "progress").at(-1) ?? null;
    const report = build.report as (BuildReport & { cachedFromBuildId?: string }) | null;
    const { engineStorageKey, calibrationSet, calibrationMethod, calibrationPercentile, calibrationSha256, ...rest } =
      flatten(build);
    return {
      ...rest,
      calibration:
        calibrationMethod && calibrationSha256
          ? {
              setId: calibrationSet?.id ?? null,
              filename: calibrationSet?.filename ?? null,
              sampleCount: calibrationSet?.sampleCount ?? null,
              sha256: calibrationSha256,
              method: calibrationMethod,
              percentile: calibrationPercentile,
            }
          : null,
      report,
      cached: Boolean(report?.cachedFromBuildId),
      progress: progress && { stage: progress.stage, fraction: progress.fraction, message: progress.message },
      logs: events.flatMap((e) => (e.type === "log" ? [{ level: e.level, message: e.message, at: e.at }] : [])),
      downloadUrl: build.status === "succeeded" && engineStorageKey ? engineDownloadPath(build.id) : null,
    };
  }),

  /** Progress and log events after a stream id, for a live view that only wants what is new. */
  events: orgProcedure.input(ZBuildEvents).query(async ({ ctx, input }) => {
    const build = await findBuild(ctx, input.id);
    return ctx.buildQueues.events(build.id, input.after);
  }),

  cancel: orgProcedure.input(ZBuildId).mutation(async ({ ctx, input }) => {
    const build = await findBuild(ctx, input.id);
    const { count } = await ctx.prisma.build.updateMany({
      where: { id: build.id, orgId: ctx.org.id, status: { in: ["queued", "running"] } },
      data: { status: "canceled", finishedAt: new Date(), error: "Canceled by a user" },
    });
    if (count === 0)
      throw new KilnError(
        "CONFLICT",
        `Build ${build.id} already ${build.status}; only queued or running builds can be canceled`,
      );
    await ctx.buildQueues.cancel(build);
    ctx.audit.target("build", build.id);
    return { id: build.id, status: "canceled" as const };
  }),

  retry: orgProcedure.input(ZBuildId).mutation(async ({ ctx, input }) => {
    const build = await findBuild(ctx, input.id);
    const { count } = await ctx.prisma.build.updateMany({
      where: { id: build.id, orgId: ctx.org.id, status: { in: ["failed", "canceled"] } },
      data: { status: "queued", error: null, startedAt: null, finishedAt: null, report: Prisma.DbNull },
    });
    if (count === 0)
      throw new KilnError(
        "CONFLICT",
        `Build ${build.id} is ${build.status}; only failed or canceled builds can be retried`,
      );
    await enqueueOrFail(ctx, { ...build, orgId: ctx.org.id });
    ctx.audit.target("build", build.id);
    return { id: build.id, status: "queued" as const };
  }),

  /** Where the engine file can be downloaded (a same-origin route that checks the session again). */
  downloadUrl: orgProcedure.input(ZBuildId).query(async ({ ctx, input }) => {
    const build = await findBuild(ctx, input.id);
    if (build.status !== "succeeded" || !build.engineStorageKey) {
      throw new KilnError("CONFLICT", `Build ${build.id} has no engine yet (it is ${build.status})`);
    }
    return { url: engineDownloadPath(build.id) };
  }),
});
