// Usage for the dashboard: requests, compute seconds, latency percentiles and errors per deployment
// and per organization, and this month's quota use against the plan.
import { QuotaEnforcer, usageReport } from "@kiln/metering";
import { currentPlanId, planFor } from "@kiln/plans";
import { z } from "zod";
import { orgProcedure, router } from "../trpc.ts";

export const ZUsageRange = z.object({
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
  deploymentId: z.string().optional(),
});

export const usageRouter = router({
  /** Defaults to the last 24 hours. */
  summary: orgProcedure.input(ZUsageRange).query(({ ctx, input }) => {
    const to = input.to ?? new Date();
    const from = input.from ?? new Date(to.getTime() - 24 * 3600 * 1000);
    return usageReport(ctx.prisma, ctx.org.id, { from, to }, input.deploymentId);
  }),

  /** This month's requests and compute-seconds against the plan's caps, and the rate limit. */
  quota: orgProcedure.query(async ({ ctx }) => {
    const sub = await ctx.prisma.subscription.findUnique({
      where: { orgId: ctx.org.id },
      select: { plan: true, status: true, graceEndsAt: true },
    });
    const plan = planFor(currentPlanId(sub));
    const used = await new QuotaEnforcer(ctx.redis, ctx.redisKeyPrefix).usage(ctx.org.id);
    const deployments = await ctx.prisma.deployment.count({ where: { orgId: ctx.org.id } });
    const remaining = (limit: number | null, value: number) => (limit === null ? null : Math.max(0, limit - value));
    return {
      plan: plan.id,
      requestsPerSecond: plan.limits.requestsPerSecond,
      burstRequests: plan.limits.burstRequests,
      requests: {
        used: used.requests,
        limit: plan.limits.monthlyRequests,
        remaining: remaining(plan.limits.monthlyRequests, used.requests),
      },
      computeSeconds: {
        used: used.computeSeconds,
        limit: plan.limits.monthlyComputeSeconds,
        remaining: remaining(plan.limits.monthlyComputeSeconds, used.computeSeconds),
      },
      deployments: {
        used: deployments,
        limit: plan.limits.deployments,
        remaining: remaining(plan.limits.deployments, deployments),
      },
      replicasPerDeployment: plan.limits.replicasPerDeployment,
      maxRequestBytes: plan.limits.maxRequestBytes,
    };
  }),
});
