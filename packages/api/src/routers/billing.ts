import {
  type BillingServices,
  changePlan,
  createPortalSession,
  dismissNotice,
  getBillingOverview,
  listPastInvoices,
  setSpendCap,
} from "@kiln/billing";
import { KilnError, notFound } from "@kiln/errors";
import { PLAN_IDS, plans } from "@kiln/plans";
import { z } from "zod";
import { adminProcedure, orgProcedure, router } from "../trpc.ts";

export const ZChangePlan = z.object({ planId: z.enum(PLAN_IDS) });
export const ZSetSpendCap = z.object({
  // Whole cents; null removes the cap. $1,000,000 is a guard against a typo, not a product limit.
  monthlyCapCents: z
    .number()
    .int("The cap is a whole number of cents")
    .min(0, "The cap cannot be negative")
    .max(100_000_000, "The cap is at most $1,000,000")
    .nullable(),
});
export const ZDismissNotice = z.object({ noticeId: z.string().min(1) });

function requireBilling(billing: BillingServices | undefined): BillingServices {
  if (!billing)
    throw new KilnError("BAD_REQUEST", "Billing is not configured on this Kiln (STRIPE_SECRET_KEY is unset)");
  return billing;
}

export const billingRouter = router({
  /** The plan, usage this period against what it includes, the projected invoice, cap and notices. */
  overview: orgProcedure.query(async ({ ctx }) => ({
    ...(await getBillingOverview(ctx, ctx.org.id)),
    isBillingConfigured: Boolean(ctx.billing),
    plans: PLAN_IDS.map((id) => plans[id]),
  })),
  /** Past invoices, from Stripe. */
  invoices: orgProcedure.query(({ ctx }) =>
    ctx.billing ? listPastInvoices({ ...ctx, stripe: ctx.billing.stripe }, ctx.org.id) : [],
  ),
  /** Where to send the admin to subscribe, upgrade, downgrade or cancel (Stripe Checkout or Portal). */
  changePlan: adminProcedure.input(ZChangePlan).mutation(async ({ ctx, input }) => {
    const billing = requireBilling(ctx.billing);
    const result = await changePlan(
      { ...ctx, ...billing },
      {
        orgId: ctx.org.id,
        planId: input.planId,
        successUrl: `${ctx.publicUrl}/billing?plan=${input.planId}`,
        cancelUrl: `${ctx.publicUrl}/billing`,
      },
    );
    ctx.audit.target("organization", ctx.org.id, { planId: input.planId, via: result.kind });
    return result;
  }),
  /** The Stripe Customer Portal: payment methods, invoices, cancellation. */
  portal: adminProcedure.mutation(async ({ ctx }) => {
    const billing = requireBilling(ctx.billing);
    const session = await createPortalSession(
      { prisma: ctx.prisma, stripe: billing.stripe },
      { orgId: ctx.org.id, returnUrl: `${ctx.publicUrl}/billing` },
    );
    ctx.audit.target("organization", ctx.org.id);
    return session;
  }),
  setSpendCap: adminProcedure.input(ZSetSpendCap).mutation(async ({ ctx, input }) => {
    await setSpendCap(ctx, ctx.org.id, input.monthlyCapCents);
    ctx.audit.target("organization", ctx.org.id, { monthlyCapCents: input.monthlyCapCents });
    return { monthlyCapCents: input.monthlyCapCents };
  }),
  dismissNotice: orgProcedure.input(ZDismissNotice).mutation(async ({ ctx, input }) => {
    if (!(await dismissNotice(ctx.prisma, ctx.org.id, input.noticeId, new Date()))) {
      throw notFound("Billing notice", input.noticeId);
    }
    ctx.audit.target("billingNotice", input.noticeId);
    return { dismissed: true };
  }),
});
