import type { PrismaClient } from "@kiln/db";
import { KilnError, notFound } from "@kiln/errors";
import { z } from "zod";
import type { CalibrationArray } from "../calibration/check-calibration.ts";
import { adminProcedure, orgProcedure, router } from "../trpc.ts";

export const ZCalibrationId = z.object({ id: z.string().min(1) });
export const ZCalibrationList = z.object({ modelVersionId: z.string().min(1) });

const FIELDS = {
  id: true,
  modelVersionId: true,
  filename: true,
  sha256: true,
  sizeBytes: true,
  sampleCount: true,
  arrays: true,
  createdAt: true,
  _count: { select: { builds: true } },
} as const;

type Row = { arrays: unknown; _count: { builds: number } };
const shape = <T extends Row>({ arrays, _count, ...row }: T) => ({
  ...row,
  arrays: arrays as CalibrationArray[],
  buildCount: _count.builds,
});

async function findSet(ctx: { prisma: PrismaClient; org: { id: string } }, id: string) {
  const set = await ctx.prisma.calibrationSet.findFirst({
    where: { id, orgId: ctx.org.id },
    select: { ...FIELDS, storageKey: true },
  });
  if (!set) throw notFound("Calibration set", id);
  return set;
}

/** INT8 calibration sets (uploaded through /api/calibration/upload), per model version. */
export const calibrationRouter = router({
  /** A version's calibration sets, newest first (the build form offers them again). */
  list: orgProcedure.input(ZCalibrationList).query(async ({ ctx, input }) => {
    const version = await ctx.prisma.modelVersion.findFirst({
      where: { id: input.modelVersionId, orgId: ctx.org.id },
      select: { id: true },
    });
    if (!version) throw notFound("Model version", input.modelVersionId);
    const sets = await ctx.prisma.calibrationSet.findMany({
      where: { orgId: ctx.org.id, modelVersionId: version.id },
      orderBy: { createdAt: "desc" },
      take: 50,
      select: FIELDS,
    });
    return sets.map(shape);
  }),

  get: orgProcedure.input(ZCalibrationId).query(async ({ ctx, input }) => {
    const { storageKey: _key, ...set } = await findSet(ctx, input.id);
    return shape(set);
  }),

  /** Deletes a set and its file; a set that builds used stays (retrying them reads it again). */
  delete: adminProcedure.input(ZCalibrationId).mutation(async ({ ctx, input }) => {
    const set = await findSet(ctx, input.id);
    if (set._count.builds > 0) {
      throw new KilnError(
        "CONFLICT",
        `${set.filename} was used by ${set._count.builds} build(s); delete the model version to remove it with them`,
      );
    }
    try {
      await ctx.prisma.calibrationSet.delete({ where: { id: set.id } });
    } catch (error) {
      // A build that started using it meanwhile (the foreign key refuses the delete).
      if ((error as { code?: string }).code === "P2003") {
        throw new KilnError("CONFLICT", `${set.filename} is now used by a build; it stays`);
      }
      throw error;
    }
    await ctx.storage.delete(set.storageKey);
    ctx.audit.target("calibrationSet", set.id, { filename: set.filename });
    return { id: set.id };
  }),
});
