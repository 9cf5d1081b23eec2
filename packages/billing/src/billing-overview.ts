import { currentPlanId, planFor, projectInvoice } from "@kiln/plans";
import type { BillingDeps } from "./deps.ts";
import { nowOf } from "./deps.ts";
import { listNotices } from "./notices.ts";
import { periodUsage, refreshSpendLimits, type SpendCapDeps } from "./spend-cap.ts";

/**
 * Everything the billing page shows about the current period: plan and subscription state, usage
 * against what the plan includes, the projected invoice, the cap and the notices.
 */
export async function getBillingOverview(deps: SpendCapDeps, orgId: string) {
  const now = nowOf(deps);
  const subscription = await deps.prisma.subscription.findUnique({ where: { orgId } });
  const plan = planFor(currentPlanId(subscription, now));
  const billing = await refreshSpendLimits(deps, orgId);
  const usage = await periodUsage(deps, orgId, billing.period);
  return {
    plan: { id: plan.id, name: plan.name, monthlyPriceCents: plan.monthlyPriceCents },
    subscription: subscription && {
      status: subscription.status,
      cancelAtPeriodEnd: subscription.cancelAtPeriodEnd,
      graceEndsAt: subscription.graceEndsAt,
      hasStripeSubscription: subscription.stripeSubscriptionId !== null,
    },
    period: billing.period,
    usage,
    included: plan.included,
    limits: plan.limits,
    projectedInvoice: projectInvoice(plan, usage),
    spendCapCents: billing.capCents,
    notices: await listNotices(deps.prisma, orgId),
  };
}

export type PastInvoice = {
  id: string;
  number: string | null;
  status: string | null;
  totalCents: number;
  currency: string;
  createdAt: Date;
  hostedInvoiceUrl: string | null;
  pdfUrl: string | null;
};

/** The organization's invoices, newest first, from Stripe (none before it ever had a customer). */
export async function listPastInvoices(
  deps: Pick<BillingDeps, "prisma" | "stripe">,
  orgId: string,
  limit = 24,
): Promise<PastInvoice[]> {
  const row = await deps.prisma.subscription.findUnique({ where: { orgId }, select: { stripeCustomerId: true } });
  if (!row) return [];
  const invoices = await deps.stripe.invoices.list({ customer: row.stripeCustomerId, limit });
  return invoices.data.map((invoice) => ({
    id: invoice.id ?? "",
    number: invoice.number,
    status: invoice.status,
    totalCents: invoice.total,
    currency: invoice.currency,
    createdAt: new Date(invoice.created * 1000),
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    pdfUrl: invoice.invoice_pdf ?? null,
  }));
}
