import { newId } from "@kiln/db";
import { seedDeployment } from "@kiln/db/testing";
import { currentPlanId } from "@kiln/plans";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBillingOverview, listPastInvoices } from "./billing-overview.ts";
import { changePlan, createPortalSession } from "./change-plan.ts";
import { enqueueMeterEvents, sendDueMeterEvents } from "./meter-reporting.ts";
import { type BillingHarness, startBillingHarness } from "./testing/billing-harness.ts";

describe("an organization's billing life: Free → Pro → canceled", () => {
  let h: BillingHarness;
  beforeAll(async () => {
    h = await startBillingHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("subscribes through Checkout, reports its usage once, and cancels through the portal", async () => {
    const { prisma } = h.deps;
    const orgId = await h.seedOrg("Flow Co");
    const planOf = async () =>
      currentPlanId(await prisma.subscription.findUnique({ where: { orgId } }), h.deps.now?.());

    // A new org is on Free without any Stripe object.
    expect(await planOf()).toBe("free");
    expect(h.double.customers.size).toBe(0);
    expect(await listPastInvoices(h.deps, orgId)).toEqual([]);
    await expect(
      changePlan(h.deps, { orgId, planId: "free", successUrl: "http://kiln.test/b", cancelUrl: "http://kiln.test/b" }),
    ).rejects.toThrow(/already on the free plan/);

    // Upgrade: Checkout with the flat and both metered prices, then the customer pays.
    const checkout = await changePlan(h.deps, {
      orgId,
      planId: "pro",
      successUrl: "http://kiln.test/billing?checkout=done",
      cancelUrl: "http://kiln.test/billing",
    });
    expect(checkout.kind).toBe("checkout");
    const page = await fetch(checkout.url);
    expect(await page.text()).toContain("Subscribe");
    const paid = await fetch(`${checkout.url}/pay`, { method: "POST", redirect: "manual" });
    expect(paid.status).toBe(303);
    expect(paid.headers.get("location")).toBe("http://kiln.test/billing?checkout=done");
    expect(await planOf()).toBe("pro");
    const customer = [...h.double.customers.values()][0];
    expect(customer?.metadata).toEqual({ orgId });
    const invoices = await listPastInvoices(h.deps, orgId);
    expect(invoices).toMatchObject([{ status: "paid", totalCents: 4900, currency: "usd" }]);

    // Two hours of usage in the Pro period, rolled up hourly by the serving side.
    const { deploymentId } = await seedDeployment(prisma, { orgId, name: "prod" });
    h.advance(3 * 3600);
    const hourNow = Math.floor((h.deps.now?.() ?? new Date()).getTime() / 3_600_000) * 3_600_000;
    for (const [hoursAgo, requests, ms] of [
      [2, 1_000n, 90_000n],
      [1, 500n, 30_250n],
    ] as const) {
      await prisma.usageRollup.create({
        data: {
          id: newId("use"),
          orgId,
          deploymentId,
          hour: new Date(hourNow - hoursAgo * 3_600_000),
          requests,
          gpuMilliseconds: ms,
        },
      });
    }
    // Reported by the periodic job, run several times as it would be.
    for (let i = 0; i < 3; i++) {
      await enqueueMeterEvents(h.deps);
      await sendDueMeterEvents(h.deps);
    }
    const customerId = customer?.id ?? "";
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(1_500);
    expect(h.double.meteredTotal(customerId, "kiln_compute_seconds")).toBe(120.25);
    expect(h.double.meterEvents.size).toBe(4);

    const overview = await getBillingOverview(h.deps, orgId);
    expect(overview.plan.id).toBe("pro");
    expect(overview.usage).toEqual({ requests: 1_500, computeSeconds: 120.25 });
    expect(overview.projectedInvoice.totalCents).toBe(4900);

    // The portal home works for payment methods; canceling goes through the portal's cancel flow.
    expect((await createPortalSession(h.deps, { orgId, returnUrl: "http://kiln.test/billing" })).url).toMatch(/portal/);
    const cancel = await changePlan(h.deps, {
      orgId,
      planId: "free",
      successUrl: "http://kiln.test/billing?canceled=1",
      cancelUrl: "http://kiln.test/billing",
    });
    expect(cancel.kind).toBe("portal");
    const confirmed = await fetch(`${cancel.url}/confirm`, { method: "POST", redirect: "manual" });
    expect(confirmed.status).toBe(303);
    expect(await planOf()).toBe("free");
    expect(await prisma.subscription.findUniqueOrThrow({ where: { orgId } })).toMatchObject({ status: "canceled" });
    expect(await prisma.stripeEvent.count()).toBeGreaterThanOrEqual(4);
  });
});
