import { authedProcedure, router } from "../trpc.ts";

export const meRouter = router({
  /** The signed-in user and the organization the dashboard acts on (null before the first one). */
  get: authedProcedure.query(async ({ ctx }) => {
    const membership = ctx.requestedOrgId
      ? await ctx.prisma.membership.findUnique({
          where: { orgId_userId: { orgId: ctx.requestedOrgId, userId: ctx.user.id } },
          select: { role: true, org: { select: { id: true, name: true, slug: true } } },
        })
      : null;
    return {
      user: ctx.user,
      activeOrg: membership ? { ...membership.org, role: membership.role } : null,
    };
  }),
});
