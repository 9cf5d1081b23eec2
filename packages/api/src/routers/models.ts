import type { ModelSignature } from "@kiln/engine";
import { KilnError, notFound } from "@kiln/errors";
import { z } from "zod";
import { adminProcedure, orgProcedure, router } from "../trpc.ts";

export const ZModelId = z.object({ id: z.string().min(1) });
export const ZVersionsOf = z.object({ modelId: z.string().min(1) });

const VERSION_FIELDS = {
  id: true,
  modelId: true,
  version: true,
  sha256: true,
  sizeBytes: true,
  filename: true,
  opset: true,
  producer: true,
  signature: true,
  createdAt: true,
} as const;

type VersionRow = { signature: unknown };
/** The stored signature, typed, plus the count the dashboard warns about before any build. */
const withSignature = <T extends VersionRow>(row: T) => {
  const signature = row.signature as ModelSignature;
  return { ...row, signature, unsupportedCount: signature.unsupported?.length ?? 0 };
};

export const modelsRouter = router({
  /** The organization's models, most recently changed first, each with its latest version. */
  list: orgProcedure.query(async ({ ctx }) => {
    const models = await ctx.prisma.model.findMany({
      where: { orgId: ctx.org.id },
      orderBy: { updatedAt: "desc" },
      select: {
        id: true,
        name: true,
        description: true,
        createdAt: true,
        updatedAt: true,
        _count: { select: { versions: true } },
        versions: {
          orderBy: { version: "desc" },
          take: 1,
          select: { id: true, version: true, sizeBytes: true, sha256: true, createdAt: true },
        },
      },
    });
    return models.map(({ versions, _count, ...model }) => ({
      ...model,
      versionCount: _count.versions,
      latestVersion: versions[0] ?? null,
    }));
  }),

  /** One model with all its versions (newest first) and their signatures. */
  get: orgProcedure.input(ZModelId).query(async ({ ctx, input }) => {
    const model = await ctx.prisma.model.findFirst({
      where: { id: input.id, orgId: ctx.org.id },
      select: {
        id: true,
        name: true,
        description: true,
        createdAt: true,
        updatedAt: true,
        versions: { orderBy: { version: "desc" }, select: VERSION_FIELDS },
      },
    });
    if (!model) throw notFound("Model", input.id);
    return { ...model, versions: model.versions.map(withSignature) };
  }),

  versions: orgProcedure.input(ZVersionsOf).query(async ({ ctx, input }) => {
    const model = await ctx.prisma.model.findFirst({
      where: { id: input.modelId, orgId: ctx.org.id },
      select: { id: true },
    });
    if (!model) throw notFound("Model", input.modelId);
    const versions = await ctx.prisma.modelVersion.findMany({
      where: { orgId: ctx.org.id, modelId: model.id },
      orderBy: { version: "desc" },
      select: VERSION_FIELDS,
    });
    return versions.map(withSignature);
  }),

  /** One version, with its model's name (the build form starts here). */
  version: orgProcedure.input(ZModelId).query(async ({ ctx, input }) => {
    const version = await ctx.prisma.modelVersion.findFirst({
      where: { id: input.id, orgId: ctx.org.id },
      select: { ...VERSION_FIELDS, model: { select: { name: true } } },
    });
    if (!version) throw notFound("Model version", input.id);
    const { model, ...rest } = version;
    return { ...withSignature(rest), modelName: model.name };
  }),

  /**
   * Deletes a model with its versions and builds, and their files. A model whose engine serves a
   * deployment is kept: delete the deployment first.
   */
  delete: adminProcedure.input(ZModelId).mutation(async ({ ctx, input }) => {
    const model = await ctx.prisma.model.findFirst({
      where: { id: input.id, orgId: ctx.org.id },
      select: {
        id: true,
        name: true,
        versions: { select: { storageKey: true, builds: { select: { id: true, engineStorageKey: true } } } },
      },
    });
    if (!model) throw notFound("Model", input.id);
    const buildIds = model.versions.flatMap((v) => v.builds.map((b) => b.id));
    const deployments = await ctx.prisma.deployment.count({ where: { orgId: ctx.org.id, buildId: { in: buildIds } } });
    if (deployments > 0) {
      throw new KilnError("CONFLICT", `${model.name} is deployed (${deployments} deployment(s)): delete those first`);
    }
    const engineKeys = new Set(
      model.versions.flatMap((v) => v.builds.map((b) => b.engineStorageKey)).filter((k) => k !== null),
    );
    await ctx.prisma.model.delete({ where: { id: model.id } });
    // Cached builds of other models may share an engine file; keep the files still referenced.
    const stillUsed = await ctx.prisma.build.findMany({
      where: { orgId: ctx.org.id, engineStorageKey: { in: [...engineKeys] } },
      select: { engineStorageKey: true },
    });
    for (const used of stillUsed) engineKeys.delete(used.engineStorageKey as string);
    await Promise.all([
      ...model.versions.map((v) => ctx.storage.delete(v.storageKey)),
      ...[...engineKeys].map((k) => ctx.storage.delete(k)),
    ]);
    ctx.audit.target("model", model.id, { name: model.name });
    return { id: model.id };
  }),
});
