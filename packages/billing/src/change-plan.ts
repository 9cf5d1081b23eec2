import { KilnError } from "@kiln/errors";
import {
  currentPlanId,
  isUpgrade,
  type PlanId,
  type StripePlanPrices,
  type StripePriceConfig,
  stripePricesFor,
} from "@kiln/plans";
import type { BillingDeps } from "./deps.ts";
import { nowOf } from "./deps.ts";
import { ensureStripeCustomer } from "./ensure-stripe-customer.ts";

export type ChangePlanInput = {
  orgId: string;
  planId: PlanId;
  /** Where Stripe sends the customer back after paying or confirming; absolute URLs. */
  successUrl: string;
  cancelUrl: string;
};

export type ChangePlanResult = { kind: "checkout" | "portal"; url: string };

/**
 * Starts a plan change on Stripe's hosted pages and returns where to send the customer. From Free,
 * a paid plan is a Checkout session (card and first payment); between paid plans it is a Customer
 * Portal flow confirming the new prices on the same subscription; back to Free it is the portal's
 * cancellation flow. Nothing changes in Kiln until Stripe's webhook says it happened.
 */
export async function changePlan(deps: BillingDeps, input: ChangePlanInput): Promise<ChangePlanResult> {
  const customer = await ensureStripeCustomer(deps, input.orgId);
  const row = await deps.prisma.subscription.findUniqueOrThrow({ where: { orgId: input.orgId } });
  const current = currentPlanId(row, nowOf(deps));
  if (current === input.planId) {
    throw new KilnError("CONFLICT", `The organization is already on the ${input.planId} plan`);
  }
  const hasLiveSubscription = row.stripeSubscriptionId !== null && row.status !== "canceled";

  if (input.planId === "free") {
    if (!row.stripeSubscriptionId || !hasLiveSubscription) {
      throw new KilnError("CONFLICT", "The organization has no paid subscription to cancel");
    }
    const session = await deps.stripe.billingPortal.sessions.create({
      customer,
      return_url: input.successUrl,
      flow_data: {
        type: "subscription_cancel",
        subscription_cancel: { subscription: row.stripeSubscriptionId },
        after_completion: { type: "redirect", redirect: { return_url: input.successUrl } },
      },
    });
    return { kind: "portal", url: session.url };
  }

  const prices = stripePricesFor(input.planId, deps.config);
  if (!prices) {
    throw new KilnError("BAD_REQUEST", `The ${input.planId} plan has no Stripe prices configured (STRIPE_PRICE_*)`);
  }

  if (hasLiveSubscription && row.stripeSubscriptionId) {
    const subscription = await deps.stripe.subscriptions.retrieve(row.stripeSubscriptionId);
    // Each current item is swapped for the new plan's price of the same kind: flat, requests, compute.
    const items = subscription.items.data.map((item) => {
      const kind = priceKind(item.price.id, deps.config);
      if (!kind) {
        throw new KilnError("CONFLICT", `Subscription item ${item.id} has price ${item.price.id}, which no plan uses`);
      }
      return { id: item.id, price: prices[kind] };
    });
    const session = await deps.stripe.billingPortal.sessions.create({
      customer,
      return_url: input.cancelUrl,
      flow_data: {
        type: "subscription_update_confirm",
        subscription_update_confirm: { subscription: subscription.id, items },
        after_completion: { type: "redirect", redirect: { return_url: input.successUrl } },
      },
    });
    return { kind: "portal", url: session.url };
  }

  const session = await deps.stripe.checkout.sessions.create({
    mode: "subscription",
    customer,
    client_reference_id: input.orgId,
    line_items: [{ price: prices.base, quantity: 1 }, { price: prices.requests }, { price: prices.computeSeconds }],
    metadata: { orgId: input.orgId, planId: input.planId, upgrade: String(isUpgrade(current, input.planId)) },
    subscription_data: { metadata: { orgId: input.orgId, planId: input.planId } },
    success_url: input.successUrl,
    cancel_url: input.cancelUrl,
  });
  if (!session.url)
    throw new KilnError("INTERNAL_SERVER_ERROR", `Stripe returned Checkout session ${session.id} without a URL`);
  return { kind: "checkout", url: session.url };
}

/** A Customer Portal session for the organization's payment methods, invoices and cancellation. */
export async function createPortalSession(
  deps: Pick<BillingDeps, "prisma" | "stripe">,
  input: { orgId: string; returnUrl: string },
): Promise<{ url: string }> {
  const customer = await ensureStripeCustomer(deps, input.orgId);
  const session = await deps.stripe.billingPortal.sessions.create({ customer, return_url: input.returnUrl });
  return { url: session.url };
}

function priceKind(priceId: string, config: StripePriceConfig): keyof StripePlanPrices | null {
  for (const planId of ["pro", "enterprise"] as const) {
    const prices = stripePricesFor(planId, config);
    if (!prices) continue;
    for (const kind of ["base", "requests", "computeSeconds"] as const) if (prices[kind] === priceId) return kind;
  }
  return null;
}
