import { z } from "zod";
import { adminProcedure, router } from "../trpc.ts";

export const ZAuditLogList = z.object({
  limit: z.number().int().min(1).max(100).default(50),
  /** The id of the last row of the previous page. */
  cursor: z.string().nullish(),
  action: z.string().max(100).optional(),
});

export const auditLogRouter = router({
  /** The active organization's audit log, newest first, a page at a time (ids sort by time). */
  list: adminProcedure.input(ZAuditLogList).query(async ({ ctx, input }) => {
    const rows = await ctx.prisma.auditLog.findMany({
      where: {
        orgId: ctx.org.id,
        ...(input.cursor ? { id: { lt: input.cursor } } : {}),
        ...(input.action ? { action: input.action } : {}),
      },
      orderBy: { id: "desc" },
      take: input.limit + 1,
      select: {
        id: true,
        actorType: true,
        actorId: true,
        action: true,
        targetType: true,
        targetId: true,
        ip: true,
        userAgent: true,
        metadata: true,
        createdAt: true,
        actorUser: { select: { id: true, name: true, email: true } },
      },
    });
    const hasMore = rows.length > input.limit;
    const items = hasMore ? rows.slice(0, input.limit) : rows;
    return { items, nextCursor: hasMore ? (items.at(-1)?.id ?? null) : null };
  }),
});
