import { newId } from "@kiln/db";
import { notFound } from "@kiln/errors";
import type { BillingDeps } from "./deps.ts";

/**
 * The Stripe customer of an organization, created the first time it is needed (an org on Free that
 * never opened Checkout has none). The Subscription row that records it is created with it, on Free.
 * Two concurrent first calls create one customer: the creation carries an idempotency key derived
 * from the org id, so Stripe answers the second with the first's customer.
 */
export async function ensureStripeCustomer(
  deps: Pick<BillingDeps, "prisma" | "stripe">,
  orgId: string,
): Promise<string> {
  const existing = await deps.prisma.subscription.findUnique({ where: { orgId }, select: { stripeCustomerId: true } });
  if (existing) return existing.stripeCustomerId;
  const org = await deps.prisma.organization.findUnique({ where: { id: orgId }, select: { id: true, name: true } });
  if (!org) throw notFound("Organization", orgId);
  const customer = await deps.stripe.customers.create(
    { name: org.name, metadata: { orgId } },
    { idempotencyKey: `kiln-customer-${orgId}` },
  );
  await deps.prisma.subscription.upsert({
    where: { orgId },
    create: { id: newId("sub"), orgId, stripeCustomerId: customer.id, plan: "free", status: "active" },
    update: {},
  });
  const row = await deps.prisma.subscription.findUniqueOrThrow({
    where: { orgId },
    select: { stripeCustomerId: true },
  });
  return row.stripeCustomerId;
}
