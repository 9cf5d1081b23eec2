import { newId, type Prisma, type PrismaClient } from "@kiln/db";

/**
 * Filled in while a mutation runs: the org procedure sets the organization, the handler names what
 * it changed. The audit middleware writes one row from it once the mutation has succeeded.
 */
export class AuditTrail {
  orgId: string | null = null;
  targetType: string | null = null;
  targetId: string | null = null;
  metadata: Prisma.InputJsonValue | undefined;

  /** Names the changed thing (e.g. "apiKey", "key_01…") and optional details worth keeping. */
  target(type: string, id: string, metadata?: Record<string, unknown>): void {
    this.targetType = type;
    this.targetId = id;
    if (metadata) this.metadata = metadata as Prisma.InputJsonValue;
  }
}

export type AuditEntry = {
  orgId: string;
  actorType: "user" | "apiKey" | "system";
  actorId: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  metadata?: Prisma.InputJsonValue;
};

/** Writes one audit row. Used by the tRPC middleware and by HTTP routes outside tRPC (uploads). */
export async function recordAudit(prisma: PrismaClient, entry: AuditEntry): Promise<void> {
  await prisma.auditLog.create({
    data: {
      id: newId("aud"),
      orgId: entry.orgId,
      actorType: entry.actorType,
      actorId: entry.actorId,
      actorUserId: entry.actorType === "user" ? entry.actorId : null,
      action: entry.action,
      targetType: entry.targetType ?? null,
      targetId: entry.targetId ?? null,
      ip: entry.ip ?? null,
      userAgent: entry.userAgent ?? null,
      metadata: entry.metadata,
    },
  });
}
