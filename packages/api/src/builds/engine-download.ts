import { Readable } from "node:stream";
import { KilnError, notFound } from "@kiln/errors";
import type { Context } from "../context.ts";
import { errorResponse, requireOrgAccess } from "../org-access.ts";

/** The URL of a build's engine file (served by `downloadEngine`). */
export const engineDownloadPath = (buildId: string) => `/api/builds/${buildId}/engine`;

/** GET handler streaming a succeeded build's engine (apps/web mounts it at /api/builds/[buildId]/engine). */
export async function downloadEngine(ctx: Context, buildId: string): Promise<Response> {
  try {
    const access = await requireOrgAccess(ctx, "member");
    const build = await ctx.prisma.build.findFirst({
      where: { id: buildId, orgId: access.org.id },
      select: {
        id: true,
        status: true,
        engineStorageKey: true,
        engineSizeBytes: true,
        modelVersion: { select: { version: true, model: { select: { name: true } } } },
      },
    });
    if (!build) throw notFound("Build", buildId);
    if (build.status !== "succeeded" || !build.engineStorageKey) {
      throw new KilnError("CONFLICT", `Build ${buildId} has no engine (it is ${build.status})`);
    }
    const stream = await ctx.storage.getStream(build.engineStorageKey);
    const filename = `${build.modelVersion.model.name}-v${build.modelVersion.version}-${build.id}.kiln`;
    return new Response(Readable.toWeb(stream) as ReadableStream, {
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="${filename}"`,
        ...(build.engineSizeBytes ? { "content-length": String(build.engineSizeBytes) } : {}),
      },
    });
  } catch (error) {
    return errorResponse(error);
  }
}
