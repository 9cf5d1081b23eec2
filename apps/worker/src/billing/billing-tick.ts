import {
  type BillingDeps,
  enforceGracePeriods,
  enqueueMeterEvents,
  refreshSpendLimits,
  type SendReport,
  sendDueMeterEvents,
} from "@kiln/billing";

export type BillingTickReport = SendReport & { enqueued: number; downgraded: number; refreshed: number };

/** Rollups touched this recently have their orgs' spend projections raised to the rollup totals. */
const RECENT_ROLLUP_MS = 10 * 60_000;

/**
 * One run of the periodic billing job: queue closed usage hours for Stripe's meters and send what is
 * due, end expired grace periods, and bring the spend projections of recently active organizations
 * up to their rollups. Every step is idempotent, so overlapping or repeated runs are harmless.
 */
export async function runBillingTick(deps: BillingDeps): Promise<BillingTickReport> {
  const now = deps.now?.() ?? new Date();
  let enqueued = 0;
  for (let batch = await enqueueMeterEvents(deps); batch > 0; batch = await enqueueMeterEvents(deps)) {
    enqueued += batch;
  }
  const report: SendReport = { sent: 0, retrying: 0, failed: 0 };
  for (;;) {
    const round = await sendDueMeterEvents(deps, { limit: 100 });
    report.sent += round.sent;
    report.retrying += round.retrying;
    report.failed += round.failed;
    if (round.sent + round.retrying + round.failed < 100) break;
  }
  const downgraded = await enforceGracePeriods(deps);
  const active = await deps.prisma.usageRollup.findMany({
    where: { updatedAt: { gte: new Date(now.getTime() - RECENT_ROLLUP_MS) } },
    distinct: ["orgId"],
    select: { orgId: true },
  });
  for (const { orgId } of active) await refreshSpendLimits(deps, orgId);
  return { ...report, enqueued, downgraded: downgraded.length, refreshed: active.length };
}
