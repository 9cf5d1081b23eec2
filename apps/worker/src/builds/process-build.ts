import { Readable } from "node:stream";
import type { PrismaClient } from "@kiln/db";
import { Prisma } from "@kiln/db";
import { type Backend, type BuildOptions, build, KilnEngineError, type Profile, toEngineError } from "@kiln/engine";
import type { Logger } from "@kiln/logger";
import type { StorageProvider } from "@kiln/storage";
import { type Job, UnrecoverableError } from "bullmq";
import type { Redis } from "ioredis";
import { buildEventWriter } from "./build-events.ts";
import { CalibrationLoadError, loadCalibration } from "./calibration.ts";
import { describeBuildFailure } from "./failure-messages.ts";

export type BuildProcessorDeps = {
  prisma: PrismaClient;
  redis: Redis;
  redisKeyPrefix: string;
  storage: StorageProvider;
  logger: Logger;
  workerId: string;
  /** Running builds by id, so a cancellation message can reach the one it names. */
  running: Map<string, AbortController>;
};

/** The abort reason when the worker stops: the build goes back to the queue instead of ending. */
export const SHUTTING_DOWN = "worker shutting down";

export const engineStorageKey = (orgId: string, buildId: string) => `engines/${orgId}/${buildId}.kiln`;

/**
 * Runs one build job: loads the model from storage, runs the native builder with progress events,
 * stores the engine and the report. A build canceled meanwhile is left canceled; a model or options
 * the builder rejects fail at once with a message for the user; anything else is retried by BullMQ
 * (and a worker that dies mid-build leaves a stalled job that another worker picks up).
 */
export async function processBuild(job: Job<{ buildId: string }>, deps: BuildProcessorDeps): Promise<void> {
  const { prisma, logger } = deps;
  const buildId = job.data.buildId;
  const claimed = await prisma.build.updateMany({
    where: { id: buildId, status: { in: ["queued", "running"] } },
    data: { status: "running", startedAt: new Date(), error: null, attempts: { increment: 1 } },
  });
  // Canceled, finished or deleted since it was queued: nothing to do.
  if (claimed.count === 0) return;
  const row = await prisma.build.findUniqueOrThrow({
    where: { id: buildId },
    include: { modelVersion: { select: { storageKey: true, filename: true } } },
  });
  const events = buildEventWriter(deps.redis, deps.redisKeyPrefix, buildId);
  const log = { buildId, attempt: row.attempts, target: row.target };
  logger.info(log, "build started");
  await events.log("info", `Build started on worker ${deps.workerId} (attempt ${row.attempts})`);

  const controller = new AbortController();
  deps.running.set(buildId, controller);
  try {
    const model = await deps.storage.getBytes(row.modelVersion.storageKey);
    await events.log("info", `Loaded ${row.modelVersion.filename} (${model.length} bytes)`);
    const calibration =
      row.precision === "int8"
        ? await loadCalibration(deps.storage, {
            storageKey: row.calibrationStorageKey,
            sha256: row.calibrationSha256,
            method: row.calibrationMethod,
            percentile: row.calibrationPercentile,
          })
        : null;
    if (calibration) await events.log("info", calibration.summary);
    const options: BuildOptions = {
      backend: (row.target === "cpu" ? "cpu" : "cuda") satisfies Backend,
      precision: row.precision,
      profiles: row.profiles as unknown as Profile[],
      signal: controller.signal,
      ...calibration?.options,
    };
    const startedAt = Date.now();
    let lastStage = "";
    const pending = new Set<Promise<unknown>>();
    const result = await build(model, options, (progress) => {
      const write = events.progress(progress.stage, progress.fraction, progress.message).catch(() => {});
      pending.add(write);
      write.finally(() => pending.delete(write));
      if (progress.stage !== lastStage) {
        lastStage = progress.stage;
        void job.updateProgress({ stage: progress.stage, fraction: progress.fraction }).catch(() => {});
      }
    });
    await Promise.all(pending);
    for (const warning of result.report.warnings) await events.log("warn", warning);

    const key = engineStorageKey(row.orgId, buildId);
    const stored = await deps.storage.putStream(
      key,
      Readable.from([Buffer.from(result.engine.buffer, result.engine.byteOffset, result.engine.byteLength)]),
    );
    const finished = await prisma.build.updateMany({
      where: { id: buildId, status: "running" },
      data: {
        status: "succeeded",
        engineStorageKey: key,
        engineSizeBytes: BigInt(stored.sizeBytes),
        deviceMemoryBytes: BigInt(result.report.peakMemoryBytes),
        report: {
          ...result.report,
          durationMs: Date.now() - startedAt,
          engineSha256: stored.sha256,
        } as unknown as Prisma.InputJsonValue,
        finishedAt: new Date(),
      },
    });
    if (finished.count === 0) {
      // Canceled while the engine was being written: the user no longer wants it.
      await deps.storage.delete(key);
      return;
    }
    await events.progress("done", 1, "Engine ready");
    await events.log(
      "info",
      `Engine stored (${stored.sizeBytes} bytes) in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
    );
    logger.info({ ...log, engineSizeBytes: stored.sizeBytes }, "build succeeded");
  } catch (caught) {
    const error = caught instanceof KilnEngineError ? caught : isEngineError(caught) ? toEngineError(caught) : null;
    if (error?.code === "CANCELLED" && controller.signal.reason === SHUTTING_DOWN) {
      await events.log("warn", `Worker ${deps.workerId} is shutting down; the build will be retried`);
      await prisma.build.updateMany({ where: { id: buildId, status: "running" }, data: { status: "queued" } });
      throw new Error(SHUTTING_DOWN);
    }
    if (error?.code === "CANCELLED") {
      await events.log("warn", "Build canceled");
      logger.info(log, "build canceled");
      return;
    }
    const attemptsLeft = (job.opts.attempts ?? 1) - job.attemptsMade - 1;
    const failure = error
      ? describeBuildFailure(error)
      : caught instanceof CalibrationLoadError
        ? { message: caught.message, isFinal: true }
        : {
            message: `Kiln could not complete the build: ${(caught as Error).message}. It is retried automatically.`,
            isFinal: false,
          };
    const isFinal = failure.isFinal || attemptsLeft <= 0;
    await events.log("error", failure.message);
    await prisma.build.updateMany({
      where: { id: buildId, status: "running" },
      data: isFinal
        ? { status: "failed", error: failure.message, finishedAt: new Date(), report: Prisma.DbNull }
        : { status: "queued", error: failure.message },
    });
    logger.warn({ ...log, err: caught, isFinal }, "build failed");
    if (isFinal) throw new UnrecoverableError(failure.message);
    throw caught;
  } finally {
    deps.running.delete(buildId);
  }
}

function isEngineError(error: unknown): boolean {
  return typeof (error as { code?: unknown })?.code === "string" && error instanceof Error && !("$metadata" in error);
}
