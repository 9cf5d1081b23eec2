import { newId } from "@kiln/db";
import { seedDeployment } from "@kiln/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStripeCustomer } from "./ensure-stripe-customer.ts";
import {
  enqueueMeterEvents,
  meterEventIdentifier,
  millisecondsToSecondsValue,
  sendDueMeterEvents,
} from "./meter-reporting.ts";
import { type BillingHarness, startBillingHarness } from "./testing/billing-harness.ts";

describe("meter reporting through the outbox", () => {
  let h: BillingHarness;
  beforeAll(async () => {
    h = await startBillingHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An org with a Stripe customer and one deployment, and a function writing its hourly rollups. */
  async function orgWithUsage() {
    const orgId = await h.seedOrg();
    const customerId = await ensureStripeCustomer(h.deps, orgId);
    const { prisma } = h.deps;
    const { deploymentId } = await seedDeployment(prisma, { orgId, name: "prod" });
    const writeRollup = (hoursAgo: number, requests: bigint, gpuMilliseconds: bigint) => {
      const now = h.deps.now?.() ?? new Date();
      const hour = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 - hoursAgo * 3_600_000);
      return prisma.usageRollup.create({
        data: { id: newId("use"), orgId, deploymentId, hour, requests, gpuMilliseconds },
      });
    };
    return { orgId, customerId, writeRollup };
  }

  it("formats milliseconds as exact decimal seconds", () => {
    expect(millisecondsToSecondsValue(12_345n)).toBe("12.345");
    expect(millisecondsToSecondsValue(12_000n)).toBe("12");
    expect(millisecondsToSecondsValue(5n)).toBe("0.005");
    expect(millisecondsToSecondsValue(1_500n)).toBe("1.5");
  });

  it("reports closed hours once each, and not the hour still open", async () => {
    const { orgId, customerId, writeRollup } = await orgWithUsage();
    const closed = await writeRollup(2, 120n, 61_500n);
    const open = await writeRollup(0, 7n, 1_000n);
    expect(await enqueueMeterEvents(h.deps)).toBeGreaterThanOrEqual(2);
    expect(await enqueueMeterEvents(h.deps)).toBe(0);
    await sendDueMeterEvents(h.deps);
    await sendDueMeterEvents(h.deps);
    expect(await enqueueMeterEvents(h.deps)).toBe(0); // and marks what was sent as reported

    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(120);
    expect(h.double.meteredTotal(customerId, "kiln_compute_seconds")).toBe(61.5);
    const event = h.double.meterEvents.get(meterEventIdentifier(closed.id, "requests"));
    expect(event?.timestamp).toBe(Math.floor(closed.hour.getTime() / 1000) + 3599);
    const rows = await h.deps.prisma.meterEventOutbox.findMany({ where: { orgId } });
    expect(rows.map((r) => r.status)).toEqual(["sent", "sent"]);
    expect((await h.deps.prisma.usageRollup.findUniqueOrThrow({ where: { id: closed.id } })).reportedAt).not.toBeNull();
    expect((await h.deps.prisma.usageRollup.findUniqueOrThrow({ where: { id: open.id } })).reportedAt).toBeNull();
  });

  it("re-sends with the same identifier after a crash between send and record, and Stripe counts it once", async () => {
    const { orgId, customerId, writeRollup } = await orgWithUsage();
    const rollup = await writeRollup(3, 40n, 0n);
    await enqueueMeterEvents(h.deps);
    const identifier = meterEventIdentifier(rollup.id, "requests");

    // The process dies after Stripe accepted the event and before the outbox recorded it.
    const crash = new Error("worker killed");
    await expect(
      sendDueMeterEvents(h.deps, {
        afterStripeAccepted: (id) => {
          if (id === identifier) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    const stuck = await h.deps.prisma.meterEventOutbox.findUniqueOrThrow({ where: { identifier } });
    expect(stuck.status).toBe("sending");

    // Until the send timeout passes, another run leaves it alone (it might still be in flight).
    await sendDueMeterEvents(h.deps);
    expect(h.double.meterEventAttempts(identifier)).toBe(1);

    h.advance(61);
    expect(await sendDueMeterEvents(h.deps)).toMatchObject({ sent: 1, failed: 0 });
    expect(h.double.meterEventAttempts(identifier)).toBe(2);
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(40);
    const row = await h.deps.prisma.meterEventOutbox.findUniqueOrThrow({ where: { identifier } });
    expect(row).toMatchObject({ status: "sent", attempts: 2, nextAttemptAt: null });
    await enqueueMeterEvents(h.deps);
    expect((await h.deps.prisma.usageRollup.findUniqueOrThrow({ where: { id: rollup.id } })).reportedAt).not.toBeNull();
    expect(await h.deps.prisma.meterEventOutbox.count({ where: { orgId } })).toBe(1);
  });

  it("reports usage that reaches a rollup after it was reported, as the difference, once", async () => {
    const { customerId, writeRollup } = await orgWithUsage();
    const rollup = await writeRollup(5, 100n, 1_000n);
    await enqueueMeterEvents(h.deps);
    await sendDueMeterEvents(h.deps);
    await enqueueMeterEvents(h.deps);
    expect((await h.deps.prisma.usageRollup.findUniqueOrThrow({ where: { id: rollup.id } })).reportedAt).not.toBeNull();

    // A late usage event for that hour, folded in as the aggregator does (database time).
    await h.deps.prisma.$executeRaw`
      UPDATE "usage_rollups" SET "requests" = "requests" + 25, "gpuMilliseconds" = "gpuMilliseconds" + 250,
        "updatedAt" = now() WHERE "id" = ${rollup.id}`;
    for (let i = 0; i < 3; i++) {
      await enqueueMeterEvents(h.deps);
      await sendDueMeterEvents(h.deps);
    }
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(125);
    expect(h.double.meteredTotal(customerId, "kiln_compute_seconds")).toBe(1.25);
    expect(h.double.meterEvents.get(meterEventIdentifier(rollup.id, "requests", 125n))?.payload).toMatchObject({
      value: "25",
    });
  });

  it("keeps usage pending with backoff while Stripe is unreachable, then sends it", async () => {
    const { customerId, writeRollup } = await orgWithUsage();
    const rollup = await writeRollup(4, 9n, 2_000n);
    await enqueueMeterEvents(h.deps);
    const address = new URL(h.double.url);
    await h.double.stop();
    try {
      const report = await sendDueMeterEvents(h.deps);
      expect(report.sent).toBe(0);
      expect(report.retrying).toBeGreaterThanOrEqual(2);
    } finally {
      await h.double.start(Number(address.port));
    }
    const pending = await h.deps.prisma.meterEventOutbox.findMany({ where: { usageRollupId: rollup.id } });
    expect(pending.map((r) => r.status)).toEqual(["pending", "pending"]);
    expect(pending[0]?.lastError).toMatch(/connection|ECONNREFUSED/i);
    const nextAttempt = pending[0]?.nextAttemptAt?.getTime() ?? 0;
    expect(nextAttempt).toBeGreaterThan(h.deps.now?.().getTime() ?? 0);

    await sendDueMeterEvents(h.deps); // not yet due: nothing sent
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(0);
    h.advance(31);
    await sendDueMeterEvents(h.deps);
    expect(h.double.meteredTotal(customerId, "kiln_requests")).toBe(9);
    expect(h.double.meteredTotal(customerId, "kiln_compute_seconds")).toBe(2);
  });

  it("marks usage older than Stripe's 35-day window failed instead of sending it", async () => {
    const { orgId, writeRollup } = await orgWithUsage();
    await writeRollup(24 * 36, 5n, 0n);
    await enqueueMeterEvents(h.deps);
    const rows = await h.deps.prisma.meterEventOutbox.findMany({ where: { orgId } });
    expect(rows).toMatchObject([{ status: "failed", lastError: expect.stringMatching(/35-day/) }]);
  });
});
