import { type BillingServices, createStripeClient } from "@kiln/billing";
import { StripeDouble, startWebhookReceiver, TEST_STRIPE_CONFIG } from "@kiln/billing/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Context, SessionInfo } from "../context.ts";
import { createCaller } from "../root.ts";
import { createHarness, type Harness } from "../testing/harness.ts";

describe("billing router against the Stripe double", () => {
  let h: Harness;
  let double: StripeDouble;
  let billing: BillingServices;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    h = await createHarness();
    double = new StripeDouble({
      secretKey: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
      webhookSecret: TEST_STRIPE_CONFIG.STRIPE_WEBHOOK_SECRET,
      priceAmounts: { price_pro_monthly: 4900 },
    });
    const address = await double.start();
    const stripe = createStripeClient({
      STRIPE_SECRET_KEY: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
      STRIPE_API_HOST: address.host,
      STRIPE_API_PORT: address.port,
      STRIPE_API_PROTOCOL: address.protocol,
    });
    billing = { stripe, config: TEST_STRIPE_CONFIG };
    receiver = await startWebhookReceiver({ ...h.deps, ...billing });
    double.setWebhookUrl(receiver.url);
  });
  afterAll(async () => {
    await double?.settled();
    await new Promise((resolve) => receiver?.server.close(resolve));
    await double?.stop();
    await h?.close();
  });

  /** A caller as `who` in `orgId`, with billing configured unless told otherwise. */
  const as = (who: SessionInfo, orgId: string, configured = true) => {
    const ctx: Context = {
      ...h.deps,
      ...(configured ? { billing } : {}),
      headers: new Headers(),
      session: who,
      requestedOrgId: orgId,
      ip: null,
      userAgent: null,
    };
    return createCaller(ctx);
  };

  it("takes an org from Free to Pro through Checkout, with usage, invoices and a cap", async () => {
    const { org, admin, member } = await h.createOrg("Billing");
    const before = await as(member, org.id).billing.overview();
    expect(before).toMatchObject({ plan: { id: "free" }, isBillingConfigured: true, spendCapCents: null });
    expect(before.plans.map((p) => p.id)).toEqual(["free", "pro", "enterprise"]);

    await expect(as(member, org.id).billing.changePlan({ planId: "pro" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    const { kind, url } = await as(admin, org.id).billing.changePlan({ planId: "pro" });
    expect(kind).toBe("checkout");
    await double.completeCheckout(url.split("/").pop() ?? "");

    const after = await as(member, org.id).billing.overview();
    expect(after).toMatchObject({
      plan: { id: "pro", monthlyPriceCents: 4900 },
      projectedInvoice: { totalCents: 4900 },
    });
    expect(await as(member, org.id).billing.invoices()).toMatchObject([{ status: "paid", totalCents: 4900 }]);
    expect((await as(admin, org.id).billing.portal()).url).toContain("/portal/");

    await expect(as(member, org.id).billing.setSpendCap({ monthlyCapCents: 10_000 })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(as(admin, org.id).billing.setSpendCap({ monthlyCapCents: -5 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await as(admin, org.id).billing.setSpendCap({ monthlyCapCents: 9_000 });
    expect((await as(member, org.id).billing.overview()).spendCapCents).toBe(9_000);
    const log = await as(admin, org.id).auditLog.list({});
    expect(log.items.map((i) => i.action)).toEqual(
      expect.arrayContaining(["billing.changePlan", "billing.setSpendCap", "billing.portal"]),
    );
  });

  it("answers NOT_FOUND for another org's notice and says when billing is not configured", async () => {
    const a = await h.createOrg("BillA");
    const b = await h.createOrg("BillB");
    await h.deps.prisma.billingNotice.create({
      data: {
        id: "ntc_01ABCDEFGHJKMNPQRSTVWXYZ012",
        orgId: b.org.id,
        kind: "spend_cap_50",
        dedupeKey: "x",
        message: "m",
      },
    });
    await expect(
      as(a.member, a.org.id).billing.dismissNotice({ noticeId: "ntc_01ABCDEFGHJKMNPQRSTVWXYZ012" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    await as(b.member, b.org.id).billing.dismissNotice({ noticeId: "ntc_01ABCDEFGHJKMNPQRSTVWXYZ012" });
    expect((await as(b.member, b.org.id).billing.overview()).notices).toEqual([]);

    await expect(as(a.admin, a.org.id, false).billing.changePlan({ planId: "pro" })).rejects.toThrow(
      /Billing is not configured/,
    );
    expect(await as(a.member, a.org.id, false).billing.invoices()).toEqual([]);
  });
});
