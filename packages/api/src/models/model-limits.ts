import type { PrismaClient } from "@kiln/db";
import { currentPlanId, type Plan, planFor } from "@kiln/plans";

/** The organization's plan right now (Free without a subscription), which sets its model size limit. */
export async function planOf(prisma: PrismaClient, orgId: string): Promise<Plan> {
  const subscription = await prisma.subscription.findUnique({
    where: { orgId },
    select: { plan: true, status: true, graceEndsAt: true },
  });
  return planFor(currentPlanId(subscription));
}
