import { type BillingNoticeKind, newId, type PrismaClient } from "@kiln/db";

type Db = Pick<PrismaClient, "billingNotice">;

/**
 * Records a notice for the dashboard, once per (org, kind, dedupeKey): saying the same thing twice
 * (a replayed event, a threshold crossed by two gateways at once) leaves one notice.
 */
export async function recordNotice(
  db: Db,
  notice: { orgId: string; kind: BillingNoticeKind; dedupeKey: string; message: string },
): Promise<void> {
  await db.billingNotice.createMany({ data: [{ id: newId("ntc"), ...notice }], skipDuplicates: true });
}

/** The organization's notices not yet dismissed, newest first. */
export async function listNotices(db: Db, orgId: string) {
  return db.billingNotice.findMany({
    where: { orgId, dismissedAt: null },
    orderBy: { createdAt: "desc" },
    select: { id: true, kind: true, message: true, createdAt: true },
    take: 50,
  });
}

/** Dismisses one notice; another organization's notice id changes nothing (and says so). */
export async function dismissNotice(db: Db, orgId: string, noticeId: string, now: Date): Promise<boolean> {
  const { count } = await db.billingNotice.updateMany({
    where: { id: noticeId, orgId, dismissedAt: null },
    data: { dismissedAt: now },
  });
  return count === 1;
}
