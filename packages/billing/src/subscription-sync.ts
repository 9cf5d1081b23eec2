import type { PrismaClient, SubscriptionStatus } from "@kiln/db";
import { type PlanId, planForStripePrice, type StripePriceConfig } from "@kiln/plans";
import type Stripe from "stripe";
import { recordNotice } from "./notices.ts";

export type Tx = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];

/** What Kiln keeps of a Stripe subscription. */
export type SubscriptionSnapshot = {
  stripeSubscriptionId: string;
  stripeCustomerId: string;
  status: SubscriptionStatus;
  plan: PlanId;
  stripePriceId: string | null;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
};

/** Statuses Stripe never leaves: a subscription that reached one is over. */
const TERMINAL: ReadonlySet<SubscriptionStatus> = new Set(["canceled", "incomplete_expired"]);

const fromUnix = (seconds: number | null | undefined) => (seconds ? new Date(seconds * 1000) : null);

export function snapshotOf(subscription: Stripe.Subscription, config: StripePriceConfig): SubscriptionSnapshot {
  const items = subscription.items.data;
  const planItem = items.find((item) => planForStripePrice(item.price.id, config) !== null);
  const plan = planItem ? planForStripePrice(planItem.price.id, config) : null;
  const metadataPlan = subscription.metadata?.planId;
  // Prices decide; the metadata Kiln wrote at Checkout is the fallback for a price not (yet) configured.
  const resolved: PlanId = plan ?? (metadataPlan === "pro" || metadataPlan === "enterprise" ? metadataPlan : "free");
  return {
    stripeSubscriptionId: subscription.id,
    stripeCustomerId: typeof subscription.customer === "string" ? subscription.customer : subscription.customer.id,
    status: subscription.status as SubscriptionStatus,
    plan: TERMINAL.has(subscription.status as SubscriptionStatus) ? "free" : resolved,
    stripePriceId: planItem?.price.id ?? null,
    currentPeriodStart: fromUnix(items[0]?.current_period_start),
    currentPeriodEnd: fromUnix(items[0]?.current_period_end),
    cancelAtPeriodEnd: subscription.cancel_at_period_end,
  };
}

export type SyncOutcome = { orgId: string | null; applied: boolean; reason?: string };

/**
 * Writes a subscription snapshot from an event created at `eventAt` onto the organization's row,
 * unless the row already holds newer news. Stripe does not deliver events in order, so:
 * an event older than the last one applied is ignored; a subscription that was seen ending never
 * comes back to life; and an event about a subscription other than the row's live one is ignored
 * (the late death of a previous subscription must not cancel the current one).
 * The row is locked for the comparison, so two events for one organization apply one after the other.
 */
export async function applySubscriptionSnapshot(
  tx: Tx,
  snapshot: SubscriptionSnapshot,
  eventAt: Date,
  options: { graceDays: number },
): Promise<SyncOutcome> {
  const row = await lockRowByCustomer(tx, snapshot.stripeCustomerId);
  if (!row) return { orgId: null, applied: false, reason: "unknown customer" };
  if (row.stripeEventAt && eventAt < row.stripeEventAt) {
    return { orgId: row.orgId, applied: false, reason: "older than the state already applied" };
  }
  const sameSubscription = row.stripeSubscriptionId === snapshot.stripeSubscriptionId;
  if (sameSubscription && TERMINAL.has(row.status) && !TERMINAL.has(snapshot.status)) {
    return { orgId: row.orgId, applied: false, reason: "the subscription already ended" };
  }
  if (!sameSubscription && row.stripeSubscriptionId && !TERMINAL.has(row.status)) {
    if (TERMINAL.has(snapshot.status)) {
      return { orgId: row.orgId, applied: false, reason: "a previous subscription ended" };
    }
  }
  const graceEndsAt =
    snapshot.status === "past_due"
      ? (row.graceEndsAt ?? new Date(eventAt.getTime() + options.graceDays * 86_400_000))
      : null;
  await tx.subscription.update({
    where: { orgId: row.orgId },
    data: { ...snapshot, graceEndsAt, stripeEventAt: eventAt },
  });
  if (graceEndsAt && !row.graceEndsAt)
    await recordPaymentFailed(tx, row.orgId, snapshot.stripeSubscriptionId, graceEndsAt);
  return { orgId: row.orgId, applied: true };
}

/** The row of a Stripe customer, locked until the transaction ends. */
export async function lockRowByCustomer(tx: Tx, stripeCustomerId: string) {
  const locked = await tx.$queryRaw<{ orgId: string }[]>`
    SELECT "orgId" FROM "subscriptions" WHERE "stripeCustomerId" = ${stripeCustomerId} FOR UPDATE`;
  const orgId = locked[0]?.orgId;
  return orgId ? tx.subscription.findUnique({ where: { orgId } }) : null;
}

export async function recordPaymentFailed(
  tx: Tx,
  orgId: string,
  stripeSubscriptionId: string,
  graceEndsAt: Date,
): Promise<void> {
  await recordNotice(tx, {
    orgId,
    kind: "payment_failed",
    dedupeKey: `${stripeSubscriptionId}:${graceEndsAt.toISOString()}`,
    message:
      `A payment failed. Update your payment method before ${graceEndsAt.toISOString().slice(0, 10)}, ` +
      "or the organization moves to the Free plan.",
  });
}
