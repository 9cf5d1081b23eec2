import type Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changePlan } from "../change-plan.ts";
import { enforceGracePeriods } from "../grace-period.ts";
import { type BillingHarness, startBillingHarness } from "../testing/billing-harness.ts";
import { handleStripeWebhook } from "./handle-stripe-webhook.ts";

const urls = { successUrl: "http://kiln.test/billing?ok=1", cancelUrl: "http://kiln.test/billing" };

describe("Stripe webhook against the Stripe double", () => {
  let h: BillingHarness;
  beforeAll(async () => {
    h = await startBillingHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An org that went through Checkout for Pro, with the events Stripe sent. */
  async function subscribedOrg() {
    const orgId = await h.seedOrg();
    const { url } = await changePlan(h.deps, { orgId, planId: "pro", ...urls });
    const sessionId = url.split("/").pop() ?? "";
    const delivered = await h.double.completeCheckout(sessionId);
    expect(delivered.map((d) => d.status)).toEqual([200, 200, 200]);
    const row = await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } });
    return { orgId, row, delivered };
  }

  it("puts an org on Pro when Checkout completes", async () => {
    const { row } = await subscribedOrg();
    expect(row).toMatchObject({ plan: "pro", status: "active", stripePriceId: "price_pro_monthly", graceEndsAt: null });
    expect(row.stripeSubscriptionId).toMatch(/^sub_/);
    expect(row.currentPeriodEnd?.getTime()).toBeGreaterThan(row.currentPeriodStart?.getTime() ?? Infinity);
  });

  it("answers 400 to a bad or missing signature and changes nothing", async () => {
    const { orgId, row } = await subscribedOrg();
    const forged = {
      ...h.double.events.at(-1),
      id: "evt_forged",
      type: "customer.subscription.deleted",
      data: {
        object: { ...(await h.deps.stripe.subscriptions.retrieve(row.stripeSubscriptionId ?? "")), status: "canceled" },
      },
    } as Stripe.Event;
    const wrongSecret = h.double.signedRequest(forged, "whsec_someone_else");
    const bad = await fetch(h.webhookUrl, {
      method: "POST",
      headers: { "stripe-signature": wrongSecret.signature },
      body: wrongSecret.body,
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/signature/i);

    const signed = h.double.signedRequest(forged);
    const tampered = await handleStripeWebhook(h.deps, signed.body.replace('"canceled"', '"active"'), signed.signature);
    expect(tampered.status).toBe(400);
    expect((await handleStripeWebhook(h.deps, signed.body, null)).status).toBe(400);
    expect(await h.deps.prisma.stripeEvent.count({ where: { id: "evt_forged" } })).toBe(0);
    expect(await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({ plan: "pro" });
  });

  it("handles a replayed event once", async () => {
    const { orgId, row } = await subscribedOrg();
    const [failed] = await h.double.failRenewal(row.stripeSubscriptionId ?? "");
    const event = failed?.event as Stripe.Event;
    const afterFirst = await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } });
    expect(afterFirst.status).toBe("past_due");

    // The customer pays; then the old failure event is replayed (Stripe retry, or an attacker).
    await h.double.payRenewal(row.stripeSubscriptionId ?? "");
    const { body, signature } = h.double.signedRequest(event);
    const replay = await handleStripeWebhook(h.deps, body, signature);
    expect(replay).toEqual({ status: 200, body: { received: true, duplicate: true } });
    const afterReplay = await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } });
    expect(afterReplay).toMatchObject({ status: "active", graceEndsAt: null });
    expect(await h.deps.prisma.stripeEvent.count({ where: { id: event.id } })).toBe(1);
    expect(await h.deps.prisma.billingNotice.count({ where: { orgId, kind: "payment_failed" } })).toBe(1);
  });

  it("never lets an older event overwrite newer state", async () => {
    const orgId = await h.seedOrg();
    h.double.setWebhookUrl(undefined); // collect the events, deliver them in a chosen order
    try {
      const { url } = await changePlan(h.deps, { orgId, planId: "pro", ...urls });
      await h.double.completeCheckout(url.split("/").pop() ?? "");
      const [created, completed] = h.double.events.slice(-3);
      h.advance(60);
      if (!created) throw new Error("the double emitted no customer.subscription.created event");
      const subscriptionId = String((created.data.object as Stripe.Subscription).id);
      await h.deps.stripe.subscriptions.update(subscriptionId, {
        items: (await h.deps.stripe.subscriptions.retrieve(subscriptionId)).items.data.map((item, i) => ({
          id: item.id,
          price: ["price_enterprise_monthly", "price_enterprise_requests", "price_enterprise_compute"][i] ?? "",
        })),
      });
      await h.double.settled();
      const upgraded = h.double.events.at(-1) as Stripe.Event;
      expect(upgraded.type).toBe("customer.subscription.updated");
      const send = (event: Stripe.Event) => {
        const { body, signature } = h.double.signedRequest(event);
        return handleStripeWebhook(h.deps, body, signature);
      };

      // The upgrade arrives first, then the (older) creation and checkout completion.
      expect((await send(upgraded)).body).toMatchObject({ applied: true });
      expect((await send(created as Stripe.Event)).body).toMatchObject({ applied: false });
      await send(completed as Stripe.Event);
      expect(await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({
        plan: "enterprise",
        status: "active",
      });

      // Canceled, then an update from before the cancellation arrives late: still canceled.
      h.advance(60);
      await h.deps.stripe.subscriptions.cancel(subscriptionId);
      await h.double.settled();
      const deleted = h.double.events.at(-1) as Stripe.Event;
      expect((await send(deleted)).body).toMatchObject({ applied: true });
      const lateUpdate = { ...upgraded, id: "evt_late_update", created: deleted.created } as Stripe.Event;
      expect((await send(lateUpdate)).body).toMatchObject({ applied: false });
      expect(await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({
        plan: "free",
        status: "canceled",
      });
    } finally {
      h.double.setWebhookUrl(h.webhookUrl);
    }
  });

  it("acknowledges events outside the allow-list without acting on them", async () => {
    const event = { ...h.double.events.at(-1), id: "evt_other", type: "customer.created" } as Stripe.Event;
    const { body, signature } = h.double.signedRequest(event);
    expect(await handleStripeWebhook(h.deps, body, signature)).toEqual({
      status: 200,
      body: { received: true, ignored: "customer.created" },
    });
    expect(await h.deps.prisma.stripeEvent.count({ where: { id: "evt_other" } })).toBe(0);
  });

  it("keeps the plan through the grace period after a failed payment, then downgrades to Free", async () => {
    const { orgId, row } = await subscribedOrg();
    await h.double.failRenewal(row.stripeSubscriptionId ?? "");
    const pastDue = await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } });
    expect(pastDue).toMatchObject({ plan: "pro", status: "past_due" });
    const graceDays = ((pastDue.graceEndsAt?.getTime() ?? 0) - Date.now()) / 86_400_000;
    expect(graceDays).toBeGreaterThan(6.9);
    const notices = await h.deps.prisma.billingNotice.findMany({ where: { orgId } });
    expect(notices.map((n) => n.kind)).toEqual(["payment_failed"]);
    expect(notices[0]?.message).toMatch(/payment failed.*Free plan/i);

    // A second failed attempt (Stripe's retry) does not extend the grace period.
    h.advance(86_400);
    await h.double.failRenewal(row.stripeSubscriptionId ?? "");
    const stillPastDue = await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } });
    expect(stillPastDue.graceEndsAt).toEqual(pastDue.graceEndsAt);

    expect(await enforceGracePeriods(h.deps)).not.toContain(orgId);
    h.advance(7 * 86_400);
    expect(await enforceGracePeriods(h.deps)).toContain(orgId);
    await h.double.settled();
    expect(await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({
      plan: "free",
      status: "canceled",
    });
    expect(h.double.subscriptions.get(row.stripeSubscriptionId ?? "")?.status).toBe("canceled");
    const kinds = (await h.deps.prisma.billingNotice.findMany({ where: { orgId } })).map((n) => n.kind);
    expect(kinds.sort()).toEqual(["downgraded", "payment_failed"]);
  });

  it("ends the grace period when the invoice is paid", async () => {
    const { orgId, row } = await subscribedOrg();
    await h.double.failRenewal(row.stripeSubscriptionId ?? "");
    h.advance(3600);
    await h.double.payRenewal(row.stripeSubscriptionId ?? "");
    expect(await h.deps.prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({
      plan: "pro",
      status: "active",
      graceEndsAt: null,
    });
    const open = await h.deps.prisma.billingNotice.count({ where: { orgId, dismissedAt: null } });
    expect(open).toBe(0);
  });
});
