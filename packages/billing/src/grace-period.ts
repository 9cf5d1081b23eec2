import Stripe from "stripe";
import type { BillingDeps } from "./deps.ts";
import { nowOf } from "./deps.ts";
import { recordNotice } from "./notices.ts";
import { refreshSpendLimits } from "./spend-cap.ts";

/**
 * Ends the grace period of subscriptions whose failed payment was not fixed in time: cancels the
 * subscription in Stripe, moves the organization to Free and tells it so. (The plan already counts as
 * Free from the moment grace ends, see currentPlanId; this makes Stripe stop billing too.)
 * Returns the organizations downgraded.
 */
export async function enforceGracePeriods(deps: BillingDeps): Promise<string[]> {
  const now = nowOf(deps);
  const expired = await deps.prisma.subscription.findMany({
    where: { status: "past_due", graceEndsAt: { lte: now } },
    take: 100,
  });
  const downgraded: string[] = [];
  for (const row of expired) {
    if (row.stripeSubscriptionId) {
      try {
        await deps.stripe.subscriptions.cancel(row.stripeSubscriptionId, undefined, {
          idempotencyKey: `kiln-grace-cancel-${row.stripeSubscriptionId}`,
        });
      } catch (error) {
        // Already canceled in Stripe (by the customer, or an earlier run): the row is what is left to fix.
        if (!(error instanceof Stripe.errors.StripeInvalidRequestError)) throw error;
      }
    }
    const { count } = await deps.prisma.subscription.updateMany({
      where: { orgId: row.orgId, status: "past_due", graceEndsAt: { lte: now } },
      data: { plan: "free", status: "canceled", cancelAtPeriodEnd: false },
    });
    if (count === 0) continue; // paid meanwhile
    await recordNotice(deps.prisma, {
      orgId: row.orgId,
      kind: "downgraded",
      dedupeKey: row.stripeSubscriptionId ?? row.id,
      message: `The payment was not completed by ${row.graceEndsAt?.toISOString().slice(0, 10)}: the organization is now on the Free plan.`,
    });
    await refreshSpendLimits(deps, row.orgId);
    downgraded.push(row.orgId);
  }
  return downgraded;
}
